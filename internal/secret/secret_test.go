package secret

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	key, err := ParseKey(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	const plain = "postgres://alice:s3cret@db:5432/shop"
	sealed := s.Seal(plain)
	if strings.Contains(sealed, "s3cret") || !strings.HasPrefix(sealed, "v1:") {
		t.Fatalf("sealed = %q", sealed)
	}
	if sealed == s.Seal(plain) {
		t.Fatal("two seals of one plaintext are equal; nonce is not random")
	}
	got, err := s.Open(sealed)
	if err != nil || got != plain {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := ParseKey(NewKey())
	s2, _ := NewSealer(other)
	if _, err := s2.Open(sealed); err == nil {
		t.Fatal("opened with the wrong key")
	}
	if _, err := s.Open("v1:" + sealed[5:]); err == nil {
		t.Fatal("opened a tampered value")
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir", "key")
	k1, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(k1) != string(k2) {
		t.Fatal("key changed between loads")
	}
}

func TestParseKeyRejects(t *testing.T) {
	for _, in := range []string{"", "not base64!", "c2hvcnQ="} {
		if _, err := ParseKey(in); err == nil {
			t.Errorf("ParseKey(%q) accepted", in)
		}
	}
}
