package localcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/atomicfile"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/selfsigned"
)

// The broker's second listener, SASL_SSL, takes SCRAM-SHA-256 over TLS
// only. Its certificate, for 127.0.0.1 and localhost, is signed by a CA
// made for the cluster at its first start (tls/ca.pem, tls/server.pem);
// its user is created, with a password drawn at every start, through the
// PLAINTEXT listener once the broker answers.

// saslListener is the name of the broker's SASL_SSL listener.
const saslListener = "SASL_SSL"

// kafkaSASLUser is the SCRAM-SHA-256 user of the SASL_SSL listener.
const kafkaSASLUser = "cdcq-test"

// scramIterations is the credential's SCRAM iteration count (Kafka takes
// 4096 to 16384).
const scramIterations = 4096

// certValidity is how long the generated certificates are valid;
// ensureTLS makes new ones when less than certRenewBefore is left.
const (
	certValidity    = 10 * 365 * 24 * time.Hour
	certRenewBefore = 30 * 24 * time.Hour
)

// ensureTLS makes the cluster's CA certificate (tls/ca.pem) and the
// broker's key and certificate chain (tls/server.pem, PKCS #8 key first,
// mode 0600) unless usable ones exist. The CA's key is not kept.
func ensureTLS(l layout) error {
	if err := checkTLSFiles(l); err == nil {
		return nil
	}
	if err := os.MkdirAll(l.tlsDir(), 0o700); err != nil {
		return fmt.Errorf("localcluster: create %s: %w", l.tlsDir(), err)
	}
	caPEM, serverPEM, err := newTLSFiles()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(l.tlsServer(), serverPEM, 0o600); err != nil {
		return fmt.Errorf("localcluster: write %s: %w", l.tlsServer(), err)
	}
	if err := atomicfile.Write(l.tlsCA(), caPEM, 0o644); err != nil {
		return fmt.Errorf("localcluster: write %s: %w", l.tlsCA(), err)
	}
	return nil
}

// checkTLSFiles reports why the existing CA and server files cannot be
// used: missing, not a key pair, not signed by the CA, not for 127.0.0.1,
// or expiring soon.
func checkTLSFiles(l layout) error {
	caPEM, err := os.ReadFile(l.tlsCA())
	if err != nil {
		return err
	}
	serverPEM, err := os.ReadFile(l.tlsServer())
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(serverPEM, serverPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", l.tlsServer(), err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("%s: %w", l.tlsServer(), err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%s holds no certificate", l.tlsCA())
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		DNSName: "127.0.0.1", Roots: roots, CurrentTime: time.Now().Add(certRenewBefore),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

// newTLSFiles makes a CA and a server certificate for 127.0.0.1 and
// localhost that it signs: the CA certificate as PEM, and the server's
// PKCS #8 key followed by its certificate as PEM (Kafka's PEM key store
// file).
func newTLSFiles() (caPEM, serverPEM []byte, err error) {
	ca, err := selfsigned.NewCA("cdcq localcluster CA", certValidity)
	if err != nil {
		return nil, nil, fmt.Errorf("localcluster: %w", err)
	}
	server, err := ca.Server(certValidity, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, nil, fmt.Errorf("localcluster: %w", err)
	}
	keyPEM, err := server.PKCS8KeyPEM()
	if err != nil {
		return nil, nil, fmt.Errorf("localcluster: %w", err)
	}
	return ca.PEM(), append(keyPEM, server.CertPEM()...), nil
}

// addSCRAMUser creates the SASL_SSL listener's user, or sets its password,
// through the PLAINTEXT listener at brokers.
func addSCRAMUser(ctx context.Context, brokers string, u credential) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.DialTimeout(2*time.Second))
	if err != nil {
		return fmt.Errorf("localcluster: kafka client: %w", err)
	}
	defer cl.Close()
	res, err := kadm.NewClient(cl).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{
		User: u.User, Mechanism: kadm.ScramSha256, Iterations: scramIterations, Password: u.Password,
	}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return fmt.Errorf("localcluster: create the SCRAM-SHA-256 user %s on kafka at %s: %w", u.User, brokers, err)
	}
	return nil
}

// kafkaSASLSecurity is how the SASL_SSL listener is reached: as u, with
// SCRAM-SHA-256, over TLS with the CA in caFile.
func kafkaSASLSecurity(caFile string, u credential) (kafkasec.Security, error) {
	sec, err := kafkasec.Load(kafkasec.Settings{CAFile: caFile, Mechanism: kafkasec.ScramSHA256, Username: u.User, Password: u.Password})
	if err != nil {
		return kafkasec.Security{}, fmt.Errorf("localcluster: kafka %s: %w", saslListener, err)
	}
	return sec, nil
}

// kafkaSASLReady: the SASL_SSL listener at brokers takes sec's user and
// answers a metadata request with a controller. Its errors name the
// listener.
func kafkaSASLReady(ctx context.Context, brokers string, sec kafkasec.Security) error {
	if err := kafkaReady(ctx, brokers, sec.KgoOpts()...); err != nil {
		return fmt.Errorf("%s listener: %w", saslListener, err)
	}
	return nil
}
