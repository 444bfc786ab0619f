// Package secret seals connection strings with AES-256-GCM so that they can
// travel on the control topic and rest in Postgres without their passwords
// being readable. Every cdcq process that handles commands shares the keys.
//
// A sealed value names the key that sealed it (its key id) and is bound to
// the environment it belongs to: the environment id is the cipher's
// associated data, so a value copied into another environment's command or
// row does not open. One key seals; older keys still open, so that keys can
// be rotated (see Sealer.Current and `cdcq reseal`).
//
// This package must not import other cdcq packages.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// The formats. v2 is "v2:<key id>:<base64url(nonce|ciphertext)>", sealed
// with the environment as associated data. v1 ("v1:<base64url>", one key,
// no associated data) is what cdcq wrote before; Open still reads it so that
// stored values keep working until `cdcq reseal` rewrites them.
const (
	prefixV1 = "v1:"
	prefixV2 = "v2:"
)

// keyIDLen is the length of a key id in hex digits.
const keyIDLen = 8

// ErrMalformed is what every failure to open wraps: a value that is not a
// sealed value, was changed, belongs to another environment or was sealed
// with a key this process does not have.
var ErrMalformed = errors.New("secret: malformed sealed value")

// ErrUnknownKey is the failure of a value sealed with a key this process
// does not have; it wraps ErrMalformed. An operator mends it by giving the
// process that key; any other ErrMalformed is a value that was changed or
// moved.
var ErrUnknownKey = fmt.Errorf("%w: sealed with a key this process does not hold", ErrMalformed)

// Sealer seals with its current key and opens with any of its keys.
type Sealer struct {
	current string // key id
	keys    map[string]cipher.AEAD
	order   []string // current first, then the previous keys as given
}

// NewSealer builds a Sealer that seals with key and opens with key and the
// previous keys.
func NewSealer(key []byte, previous ...[]byte) (*Sealer, error) {
	s := &Sealer{keys: map[string]cipher.AEAD{}}
	for i, k := range append([][]byte{key}, previous...) {
		if len(k) != KeySize {
			return nil, fmt.Errorf("secret: key %d is %d bytes, want %d", i, len(k), KeySize)
		}
		id := KeyID(k)
		if _, dup := s.keys[id]; dup {
			continue
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
		s.keys[id] = aead
		s.order = append(s.order, id)
	}
	s.current = s.order[0]
	return s, nil
}

// KeyID names a key without revealing it: the first 8 hex digits of the
// SHA-256 of "cdcq key id" and the key.
func KeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("cdcq key id\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil))[:keyIDLen]
}

// CurrentKeyID is the id of the key that seals.
func (s *Sealer) CurrentKeyID() string { return s.current }

// ParseKey decodes a base64 (standard or URL alphabet) key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != KeySize {
				return nil, fmt.Errorf("secret: key decodes to %d bytes, want %d", len(k), KeySize)
			}
			return k, nil
		}
	}
	return nil, errors.New("secret: key is not base64")
}

// ParseKeys decodes a comma-separated list of keys; errors say which entry
// (counting from 1) is wrong.
func ParseKeys(list string) ([][]byte, error) {
	var out [][]byte
	for i, part := range strings.Split(list, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, err := ParseKey(part)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// NewKey returns a fresh random key, base64-encoded.
func NewKey() string {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.StdEncoding.EncodeToString(k)
}

// LoadOrCreateKeyFile reads a base64 key from path, creating the file with a
// new key (mode 0600) when it does not exist.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
		k := NewKey()
		if err := os.WriteFile(path, []byte(k+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("secret: write key file: %w", err)
		}
		return ParseKey(k)
	}
	if err != nil {
		return nil, fmt.Errorf("secret: read key file: %w", err)
	}
	return ParseKey(string(b))
}

// associated binds a value to its environment and key.
func associated(environmentID, keyID string) []byte {
	return []byte("cdcq connection v2\x00" + keyID + "\x00" + environmentID)
}

// Seal encrypts plaintext for environmentID with the current key; the
// result is printable and starts with "v2:".
func (s *Sealer) Seal(plaintext, environmentID string) string {
	aead := s.keys[s.current]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	out := aead.Seal(nonce, nonce, []byte(plaintext), associated(environmentID, s.current))
	return prefixV2 + s.current + ":" + base64.RawURLEncoding.EncodeToString(out)
}

// Open decrypts a value that Seal produced for environmentID with any of
// this Sealer's keys, or a v1 value (bound to no environment) that one of
// them sealed. Every failure wraps ErrMalformed and says why without
// repeating the value.
func (s *Sealer) Open(sealed, environmentID string) (string, error) {
	switch {
	case strings.HasPrefix(sealed, prefixV2):
		return s.openV2(strings.TrimPrefix(sealed, prefixV2), environmentID)
	case strings.HasPrefix(sealed, prefixV1):
		return s.openV1(strings.TrimPrefix(sealed, prefixV1))
	}
	return "", fmt.Errorf("%w: it does not start with v2:", ErrMalformed)
}

func (s *Sealer) openV2(rest, environmentID string) (string, error) {
	id, body, ok := strings.Cut(rest, ":")
	if !ok || len(id) != keyIDLen {
		return "", fmt.Errorf("%w: no key id", ErrMalformed)
	}
	aead, ok := s.keys[id]
	if !ok {
		return "", fmt.Errorf("%w (key %s, which is neither CDCQ_SECRET_KEY nor in CDCQ_SECRET_KEYS_PREVIOUS)", ErrUnknownKey, id)
	}
	raw, err := decode(body, aead)
	if err != nil {
		return "", err
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, raw[:n], raw[n:], associated(environmentID, id))
	if err != nil {
		return "", fmt.Errorf("%w: it does not open for environment %s (changed, or sealed for another environment)", ErrMalformed, environmentID)
	}
	return string(plain), nil
}

func (s *Sealer) openV1(body string) (string, error) {
	for _, id := range s.order {
		aead := s.keys[id]
		raw, err := decode(body, aead)
		if err != nil {
			return "", err
		}
		n := aead.NonceSize()
		if plain, err := aead.Open(nil, raw[:n], raw[n:], nil); err == nil {
			return string(plain), nil
		}
	}
	return "", fmt.Errorf("%w (a v1 value, which names no key, that opens with none of them)", ErrUnknownKey)
}

func decode(body string, aead cipher.AEAD) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url", ErrMalformed)
	}
	if len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrMalformed)
	}
	return raw, nil
}

// Current reports whether sealed is in the current format under the current
// key, so that a reseal can leave it alone.
func (s *Sealer) Current(sealed string) bool {
	return strings.HasPrefix(sealed, prefixV2+s.current+":")
}

// Reseal opens sealed for environmentID and seals it again with the current
// key. A value that is already current is returned unchanged.
func (s *Sealer) Reseal(sealed, environmentID string) (string, bool, error) {
	plain, err := s.Open(sealed, environmentID)
	if err != nil {
		return "", false, err
	}
	if s.Current(sealed) {
		return sealed, false, nil
	}
	return s.Seal(plain, environmentID), true, nil
}
