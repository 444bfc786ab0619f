package bindings_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/cdcq/cdcq/internal/bindings"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/secret"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func key(t *testing.T) []byte {
	t.Helper()
	k, err := secret.ParseKey(secret.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestBindRebindUnbind(t *testing.T) {
	_, pool := pgtest.NewJobState(t)
	s, err := bindings.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, _, ok, err := s.Bound(ctx, "env1"); ok || err != nil {
		t.Fatalf("Bound before Bind = %v, %v", ok, err)
	}
	for i, v := range []string{"v2:00000000:first", "v2:00000000:second", "v2:00000000:third"} {
		if err := s.Bind(ctx, "env1", v); err != nil {
			t.Fatal(err)
		}
		// New: not established; established from the second on, which a
		// rebind keeps.
		got, established, ok, err := s.Bound(ctx, "env1")
		if !ok || err != nil || got != v || established != (i > 0) {
			t.Fatalf("Bound = %q %v %v %v, want %q, established %v", got, established, ok, err, v, i > 0)
		}
		if err := s.Establish(ctx, "env1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Unbind(ctx, "env1"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := s.Bound(ctx, "env1"); ok {
		t.Fatal("still bound after Unbind")
	}
}

// Reseal moves every stored value (v1, and v2 under an older key) to the
// current key, leaves current ones alone, and reports values that open
// with none of the keys without touching them.
func TestResealRewritesEveryStoredValue(t *testing.T) {
	_, pool := pgtest.NewJobState(t)
	ctx := t.Context()
	oldKey, newKey, lostKey := key(t), key(t), key(t)
	oldS, _ := secret.NewSealer(oldKey)
	lost, _ := secret.NewSealer(lostKey)
	newS, err := secret.NewSealer(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	const plain = "postgres://alice:pw@db:5432/shop"
	current := newS.Seal(plain, "cur")
	rows := map[string]string{
		"old":  oldS.Seal(plain, "old"),
		"v1":   sealV1(t, oldKey, plain),
		"cur":  current,
		"lost": lost.Seal(plain, "lost"),
		// A value moved from another environment's row does not open.
		"moved": oldS.Seal(plain, "elsewhere"),
	}
	for env, v := range rows {
		if _, err := pool.Exec(ctx, `INSERT INTO environment_bindings (environment_id, connection_sealed) VALUES ($1, $2)`, env, v); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO connections (environment_id, connection_sealed, status, created_at, updated_at)
			VALUES ($1, $2, 'RUNNING', now(), now())`, env, v); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO embedded_captures (environment_id, connection_sealed, slot_name, publication_name, topic_prefix)
			VALUES ($1, $2, 's', 'p', 't')`, env, v); err != nil {
			t.Fatal(err)
		}
	}
	reports, err := bindings.Reseal(ctx, pool, newS)
	if err != nil {
		t.Fatal(err)
	}
	byTable := map[string]bindings.ResealReport{}
	for _, r := range reports {
		byTable[r.Table] = r
	}
	for _, table := range []string{"environment_bindings", "connections", "embedded_captures"} {
		r := byTable[table]
		if r.Resealed != 2 || r.Unchanged != 1 || len(r.Failed) != 2 || r.Failed[0] != "lost" || r.Failed[1] != "moved" {
			t.Errorf("%s: %+v, want 2 resealed, 1 unchanged, lost and moved failed", table, r)
		}
		for env, before := range rows {
			var after string
			if err := pool.QueryRow(ctx, `SELECT connection_sealed FROM `+table+` WHERE environment_id = $1`, env).Scan(&after); err != nil {
				t.Fatal(err)
			}
			switch env {
			case "lost", "moved", "cur":
				if after != before {
					t.Errorf("%s/%s changed", table, env)
				}
			default:
				if !newS.Current(after) {
					t.Errorf("%s/%s is not under the current key: %.12s", table, env, after)
				}
				only, _ := secret.NewSealer(newKey)
				if got, err := only.Open(after, env); err != nil || got != plain {
					t.Errorf("%s/%s does not open with the new key alone: %v", table, env, err)
				}
			}
		}
	}
}

// sealV1 seals as cdcq did before values were bound to environments.
func sealV1(t *testing.T, key []byte, plain string) string {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return "v1:" + base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(plain), nil))
}
