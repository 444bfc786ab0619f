package localcluster

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// credential is a user and its password: the basic-authentication user of
// Connect's REST API, or the SCRAM-SHA-256 user of Kafka's SASL_SSL
// listener. The zero value is none (a cluster started before it had one).
type credential struct {
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
}

// newCredential draws a password for user at a cluster's start; what
// names the password in errors.
func newCredential(user, what string) (credential, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return credential{}, fmt.Errorf("localcluster: draw the %s password: %w", what, err)
	}
	return credential{User: user, Password: base64.RawURLEncoding.EncodeToString(b)}, nil
}
