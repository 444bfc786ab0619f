// Package kafkasectest starts in-process Kafka brokers that require TLS and
// SASL, with a certificate authority made up for the test, so that tests
// can prove cdcq's clients speak to a managed-Kafka-like cluster.
package kafkasectest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a running secure broker.
type Broker struct {
	// Brokers are the bootstrap addresses.
	Brokers []string
	// CAFile is the PEM file of the certificate authority that signed the
	// broker's certificate.
	CAFile string
	// OtherCAFile is a PEM file of an authority that signed nothing here.
	OtherCAFile string
}

// Start starts a one-broker cluster that speaks TLS only and, when
// mechanism is not empty, lets only user with password in through that
// SASL mechanism. It stops when the test ends.
func Start(t testing.TB, mechanism, user, password string, opts ...kfake.Opt) Broker {
	t.Helper()
	dir := t.TempDir()
	ca, caKey, caPEM := newCA(t, "cdcq test CA")
	_, _, otherPEM := newCA(t, "cdcq unrelated CA")
	serverCert := newServerCert(t, ca, caKey)
	b := Broker{CAFile: filepath.Join(dir, "ca.pem"), OtherCAFile: filepath.Join(dir, "other-ca.pem")}
	writeFile(t, b.CAFile, caPEM)
	writeFile(t, b.OtherCAFile, otherPEM)

	all := []kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(1), kfake.AllowAutoTopicCreation(),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12})}
	if mechanism != "" {
		all = append(all, kfake.EnableSASL(), kfake.Superuser(mechanism, user, password))
	}
	c, err := kfake.NewCluster(append(all, opts...)...)
	if err != nil {
		t.Fatalf("start secure kfake broker: %v", err)
	}
	t.Cleanup(c.Close)
	b.Brokers = c.ListenAddrs()
	return b
}

// WriteClientPair writes a client certificate and key signed by a fresh
// authority to dir and returns their paths. The broker does not check
// client certificates; the pair exercises loading and Flink's key store.
func WriteClientPair(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	ca, caKey, _ := newCA(t, "cdcq client CA")
	key := newKey(t)
	der := sign(t, &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "cdcq client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, &key.PublicKey, caKey)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return certFile, keyFile
}

// WriteCA writes the PEM certificate of a fresh authority to dir and
// returns its path.
func WriteCA(t testing.TB, dir string) string {
	t.Helper()
	_, _, caPEM := newCA(t, "cdcq written CA")
	path := filepath.Join(dir, "written-ca.pem")
	writeFile(t, path, caPEM)
	return path
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der := sign(t, tmpl, tmpl, &key.PublicKey, key)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newServerCert(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey) tls.Certificate {
	t.Helper()
	key := newKey(t)
	der := sign(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}, ca, &key.PublicKey, caKey)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func sign(t testing.TB, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, parentKey *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
