package localcluster

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

// The cluster's CA and the SASL_SSL listener's certificate are made once:
// a key pair for 127.0.0.1 and localhost that the CA signs, the key only
// its owner's; a later start reuses them.
func TestEnsureTLS(t *testing.T) {
	l := layout{dir: t.TempDir()}
	if err := ensureTLS(l); err != nil {
		t.Fatal(err)
	}
	caPEM, serverPEM := read(t, l.tlsCA()), read(t, l.tlsServer())
	if fi, err := os.Stat(l.tlsServer()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, %v; want 0600", l.tlsServer(), fi.Mode().Perm(), err)
	}
	pair, err := tls.X509KeyPair(serverPEM, serverPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if err := ensureTLS(l); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(caPEM, read(t, l.tlsCA())) || !bytes.Equal(serverPEM, read(t, l.tlsServer())) {
		t.Error("a second start made new certificates")
	}
	// A broken file is replaced.
	if err := os.WriteFile(l.tlsServer(), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ensureTLS(l); err != nil {
		t.Fatal(err)
	}
	if err := checkTLSFiles(l); err != nil {
		t.Errorf("after a broken server.pem: %v", err)
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
