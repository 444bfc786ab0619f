package selfsigned

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"
)

func TestServerCertificateVerifiesAgainstItsAuthorityOnly(t *testing.T) {
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("other CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Server(time.Hour, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := server.PKCS8KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(server.CertPEM(), keyPEM)
	if err != nil {
		t.Fatalf("the PKCS #8 key does not go with the certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	verify := func(ca *CA, name string, at time.Time) error {
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(ca.PEM()) {
			t.Fatal("the CA's PEM holds no certificate")
		}
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: at,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		return err
	}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		if err := verify(ca, name, time.Now()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if verify(ca, "example.com", time.Now()) == nil {
		t.Error("verified for a name it was not made for")
	}
	if verify(other, "localhost", time.Now()) == nil {
		t.Error("verified against another authority")
	}
	if verify(ca, "localhost", time.Now().Add(2*time.Hour)) == nil {
		t.Error("verified after its validity")
	}
}

func TestClientCertificateKeyForms(t *testing.T) {
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Client("a client", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := client.ECKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(client.CertPEM(), ec); err != nil {
		t.Fatalf("the SEC 1 key does not go with the certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(client.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || leaf.Subject.CommonName != "a client" {
		t.Errorf("client certificate: usages %v, name %q", leaf.ExtKeyUsage, leaf.Subject.CommonName)
	}
	if got := client.TLS(); got.PrivateKey != client.Key || len(got.Certificate) != 1 {
		t.Error("TLS() does not carry the pair")
	}
}
