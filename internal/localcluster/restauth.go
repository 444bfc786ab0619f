package localcluster

import (
	"fmt"

	"github.com/cdcq/cdcq/internal/atomicfile"
)

// restAuthExtension is Kafka Connect's REST extension that checks HTTP
// basic authentication against the JAAS entry "KafkaConnect".
const restAuthExtension = "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension"

// restAuthLoginModule checks users against a properties file of
// user=password lines (plain text: fine for a local cluster only).
const restAuthLoginModule = "org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule"

// connectRESTUser is the user of the cluster's Connect REST API.
const connectRESTUser = "cdcq"

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
func writeRESTAuth(l layout, a credential) error {
	for path, text := range map[string]string{
		l.conf("connect", "jaas.conf"):                   jaasConfig(l),
		l.conf("connect", "rest-credentials.properties"): a.User + "=" + a.Password + "\n",
	} {
		if err := atomicfile.Write(path, []byte(text), 0o600); err != nil {
			return fmt.Errorf("localcluster: write %s: %w", path, err)
		}
	}
	return nil
}
