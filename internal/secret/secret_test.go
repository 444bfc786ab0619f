package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k, err := ParseKey(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	key := newKey(t)
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	const plain = "postgres://alice:s3cret@db:5432/shop"
	sealed := s.Seal(plain, "env1")
	if strings.Contains(sealed, "s3cret") || !strings.HasPrefix(sealed, "v2:"+KeyID(key)+":") {
		t.Fatalf("sealed = %q", sealed)
	}
	if sealed == s.Seal(plain, "env1") {
		t.Fatal("two seals of one plaintext are equal; nonce is not random")
	}
	got, err := s.Open(sealed, "env1")
	if err != nil || got != plain {
		t.Fatalf("Open = %q, %v", got, err)
	}
	s2, _ := NewSealer(newKey(t))
	if _, err := s2.Open(sealed, "env1"); !errors.Is(err, ErrUnknownKey) || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), KeyID(key)) {
		t.Fatalf("opened with the wrong key, or the error does not name the key id: %v", err)
	}
	i := strings.LastIndex(sealed, ":") + 3
	swap := "A"
	if sealed[i] == 'A' {
		swap = "B"
	}
	tampered := sealed[:i] + swap + sealed[i+1:]
	if _, err := s.Open(tampered, "env1"); !errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnknownKey) {
		t.Fatalf("opened a tampered value, or blamed the keys: %v", err)
	}
	for _, bad := range []string{"", "v2:", "v2:abc", "v2:" + KeyID(key) + ":", "v2:" + KeyID(key) + ":!!", "v3:x", plain} {
		if _, err := s.Open(bad, "env1"); !errors.Is(err, ErrMalformed) {
			t.Errorf("Open(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

// A value sealed for one environment is malformed in another's command.
func TestSealedValueIsBoundToItsEnvironment(t *testing.T) {
	s, _ := NewSealer(newKey(t))
	sealed := s.Seal("postgres://a:pw@db/x", "tenant_a")
	for _, other := range []string{"tenant_b", "tenant_a ", "Tenant_a", ""} {
		_, err := s.Open(sealed, other)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "another environment") {
			t.Errorf("Open in %q = %v, want a malformed value for another environment", other, err)
		}
		if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), sealed) {
			t.Errorf("error repeats the value: %v", err)
		}
	}
}

// Keys rotate: the previous key still opens, the current one seals, and
// Reseal moves a value to the current key.
func TestKeyRotation(t *testing.T) {
	oldKey, newK := newKey(t), newKey(t)
	before, _ := NewSealer(oldKey)
	sealed := before.Seal("postgres://a:pw@db/x", "e")

	after, err := NewSealer(newK, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if after.CurrentKeyID() != KeyID(newK) || after.Current(sealed) {
		t.Fatal("the new sealer counts the old value as current")
	}
	if got, err := after.Open(sealed, "e"); err != nil || got != "postgres://a:pw@db/x" {
		t.Fatalf("previous key does not open: %q %v", got, err)
	}
	resealed, changed, err := after.Reseal(sealed, "e")
	if err != nil || !changed || !after.Current(resealed) {
		t.Fatalf("Reseal = %q %v %v", resealed, changed, err)
	}
	if again, changed, err := after.Reseal(resealed, "e"); err != nil || changed || again != resealed {
		t.Fatalf("Reseal of a current value = %q %v %v", again, changed, err)
	}
	if _, _, err := after.Reseal(resealed, "other"); err == nil {
		t.Fatal("Reseal accepted a value of another environment")
	}
	newOnly, _ := NewSealer(newK)
	if _, err := newOnly.Open(sealed, "e"); err == nil {
		t.Fatal("a value sealed with a dropped key opened")
	}
	if _, err := newOnly.Open(resealed, "e"); err != nil {
		t.Fatalf("resealed value does not open with the new key alone: %v", err)
	}
}

// Values written before environments were bound (v1) still open, with any
// key, so that `cdcq reseal` can rewrite them.
func TestOpensV1(t *testing.T) {
	oldKey := newKey(t)
	block, _ := aes.NewCipher(oldKey)
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	v1 := "v1:" + base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte("postgres://a:pw@db/x"), nil))

	s, _ := NewSealer(newKey(t), oldKey)
	if got, err := s.Open(v1, "any"); err != nil || got != "postgres://a:pw@db/x" {
		t.Fatalf("Open(v1) = %q %v", got, err)
	}
	resealed, changed, err := s.Reseal(v1, "any")
	if err != nil || !changed || !strings.HasPrefix(resealed, "v2:"+s.CurrentKeyID()+":") {
		t.Fatalf("Reseal(v1) = %q %v %v", resealed, changed, err)
	}
}

func TestParseKeys(t *testing.T) {
	a, b := NewKey(), NewKey()
	ks, err := ParseKeys(" " + a + ", ," + b)
	if err != nil || len(ks) != 2 {
		t.Fatalf("ParseKeys = %d keys, %v", len(ks), err)
	}
	if _, err := ParseKeys(a + ",nope"); err == nil || !strings.Contains(err.Error(), "entry 2") {
		t.Fatalf("ParseKeys with a bad entry = %v", err)
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
