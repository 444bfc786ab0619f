package kafkasec

import (
	"crypto/sha256"
	"crypto/sha512"

	"github.com/xdg-go/scram"
)

var (
	sha256Hash = scram.HashGeneratorFcn(sha256.New)
	sha512Hash = scram.HashGeneratorFcn(sha512.New)
)

// scramClient is Sarama's SCRAM conversation, done by xdg-go/scram.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func newSCRAMClient(hash scram.HashGeneratorFcn) *scramClient {
	return &scramClient{hash: hash}
}

// Begin starts a conversation for user.
func (c *scramClient) Begin(user, password, authzID string) error {
	cl, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = cl.NewConversation()
	return nil
}

// Step answers the server's challenge.
func (c *scramClient) Step(challenge string) (string, error) {
	return c.conv.Step(challenge)
}

// Done reports whether the conversation is over.
func (c *scramClient) Done() bool { return c.conv.Done() }
