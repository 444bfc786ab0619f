package localcluster

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// restAuthExtension is Kafka Connect's REST extension that checks HTTP
// basic authentication against the JAAS entry "KafkaConnect".
const restAuthExtension = "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension"

// restAuthLoginModule checks users against a properties file of
// user=password lines (plain text: fine for a local cluster only).
const restAuthLoginModule = "org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule"

// connectRESTUser is the user of the cluster's Connect REST API.
const connectRESTUser = "cdcq"

// restAuth is the basic-authentication user of a Connect REST API; the
// zero value is none (a cluster started before it had one).
type restAuth struct {
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
}

// newRESTAuth draws a password for a cluster's start.
func newRESTAuth() (restAuth, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return restAuth{}, fmt.Errorf("localcluster: draw the Connect REST password: %w", err)
	}
	return restAuth{User: connectRESTUser, Password: base64.RawURLEncoding.EncodeToString(b)}, nil
}

// header is the Authorization header value; empty without a user.
func (a restAuth) header() string {
	if a.User == "" {
		return ""
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(a.User+":"+a.Password))
}

// jaasConfig is the JAAS file of the cluster's Connect worker: its REST
// extension reads the entry KafkaConnect.
func jaasConfig(l layout) string {
	return fmt.Sprintf(`KafkaConnect {
  %s required
  file=%q;
};
`, restAuthLoginModule, l.conf("connect", "rest-credentials.properties"))
}

// writeRESTAuth writes the worker's JAAS file and its credentials file
// (mode 0600).
func writeRESTAuth(l layout, a restAuth) error {
	for path, text := range map[string]string{
		l.conf("connect", "jaas.conf"):                   jaasConfig(l),
		l.conf("connect", "rest-credentials.properties"): a.User + "=" + a.Password + "\n",
	} {
		if err := writeFileAtomicMode(path, []byte(text), 0o600); err != nil {
			return fmt.Errorf("localcluster: write %s: %w", path, err)
		}
	}
	return nil
}
