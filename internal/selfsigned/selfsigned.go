// Package selfsigned makes certificate authorities of its own and the
// certificates they sign, for a local cluster and for tests that speak TLS:
// ECDSA P-256 keys, random serial numbers.
package selfsigned

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CA is an authority: its certificate and the key it signs with.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA makes an authority named name, valid from an hour ago for validity.
func NewCA(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("selfsigned: CA key: %w", err)
	}
	tmpl := template(name, validity)
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := create(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("selfsigned: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("selfsigned: CA certificate: %w", err)
	}
	return &CA{Cert: cert, key: key}, nil
}

// PEM is the authority's certificate as PEM.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Pair is a key and the certificate the authority signed for it.
type Pair struct {
	CertDER []byte
	Key     *ecdsa.PrivateKey
}

// Server signs a server certificate for the host names and addresses.
func (ca *CA) Server(validity time.Duration, dnsNames []string, ips []net.IP) (Pair, error) {
	tmpl := template("cdcq server", validity)
	tmpl.DNSNames, tmpl.IPAddresses = dnsNames, ips
	return ca.sign(tmpl, x509.ExtKeyUsageServerAuth)
}

// Client signs a client certificate named name.
func (ca *CA) Client(name string, validity time.Duration) (Pair, error) {
	return ca.sign(template(name, validity), x509.ExtKeyUsageClientAuth)
}

func (ca *CA) sign(tmpl *x509.Certificate, usage x509.ExtKeyUsage) (Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, fmt.Errorf("selfsigned: key of %s: %w", tmpl.Subject.CommonName, err)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	der, err := create(tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return Pair{}, fmt.Errorf("selfsigned: certificate of %s: %w", tmpl.Subject.CommonName, err)
	}
	return Pair{CertDER: der, Key: key}, nil
}

// CertPEM is the certificate as PEM.
func (p Pair) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.CertDER})
}

// PKCS8KeyPEM is the key as PKCS #8 PEM ("PRIVATE KEY").
func (p Pair) PKCS8KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(p.Key)
	if err != nil {
		return nil, fmt.Errorf("selfsigned: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ECKeyPEM is the key as SEC 1 PEM ("EC PRIVATE KEY").
func (p Pair) ECKeyPEM() ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(p.Key)
	if err != nil {
		return nil, fmt.Errorf("selfsigned: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// TLS is the pair as a crypto/tls certificate.
func (p Pair) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{p.CertDER}, PrivateKey: p.Key}
}

func template(name string, validity time.Duration) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{Subject: pkix.Name{CommonName: name}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity)}
}

func create(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, parentKey *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
}
