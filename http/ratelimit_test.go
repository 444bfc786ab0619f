package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Each token has its own budget of POST and DELETE requests; past it the
// API answers 429 with Retry-After and publishes nothing, and GETs are not
// counted. The budget comes back with time.
func TestWriteRateLimitPerToken(t *testing.T) {
	var mu sync.Mutex
	now := testNow
	h := newHarness(t, func(c *Config) {
		c.RequireAuth, c.Tokens = true, []string{"tok-a", "tok-b"}
		c.WriteRate, c.WriteBurst = 0.5, 3
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	send := func(token string) response {
		req := encodings[0].build("/createDatabaseConnection", connectionFieldsFor(testEnv))
		req.Header.Set("Authorization", "Bearer "+token)
		return h.do(t, req)
	}
	for i := 0; i < 3; i++ {
		if res := send("tok-a"); res.status != http.StatusCreated {
			t.Fatalf("request %d within the burst: %d %s", i+1, res.status, res.body)
		}
	}
	res := send("tok-a")
	e := wantError(t, res, http.StatusTooManyRequests, CodeRateLimited, "")
	if got := res.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2 (one request per 2 s)", got)
	}
	if !strings.Contains(e.Message, "0.5 per second") {
		t.Errorf("message %q does not state the limit", e.Message)
	}
	if n := len(h.pub.published()); n != 3 {
		t.Fatalf("published %d commands, want 3: a refused request must publish nothing", n)
	}
	// checkJobStatus and DELETE count too; GETs do not.
	get := rawRequest(http.MethodGet, "/connections/"+testEnv, "", "")
	get.Header.Set("Authorization", "Bearer tok-a")
	if res := h.do(t, get); res.status == http.StatusTooManyRequests {
		t.Fatal("a GET was rate limited")
	}
	del := rawRequest(http.MethodDelete, "/cachedQueries/q_1", "", "")
	del.Header.Set("Authorization", "Bearer tok-a")
	if res := h.do(t, del); res.status != http.StatusTooManyRequests {
		t.Fatalf("DELETE past the limit: %d", res.status)
	}
	status := encodings[0].build("/checkJobStatus", connectionFieldsFor(testEnv))
	status.Header.Set("Authorization", "Bearer tok-a")
	if res := h.do(t, status); res.status != http.StatusTooManyRequests {
		t.Fatalf("checkJobStatus past the limit: %d %s", res.status, res.body)
	}
	// Another token has its own budget.
	if res := send("tok-b"); res.status != http.StatusCreated {
		t.Fatalf("another token: %d %s", res.status, res.body)
	}
	// An unauthenticated request is refused before it is counted.
	if res := send("wrong"); res.status != http.StatusUnauthorized {
		t.Fatalf("bad token: %d", res.status)
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if res := send("tok-a"); res.status != http.StatusCreated {
		t.Fatalf("after Retry-After: %d %s", res.status, res.body)
	}
	if res := send("tok-a"); res.status != http.StatusTooManyRequests {
		t.Fatalf("the budget refilled more than one request in 2 s: %d", res.status)
	}
}

// Without authentication (cdcq dev) callers are counted by address.
func TestWriteRateLimitByAddressWithoutAuth(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.WriteRate, c.WriteBurst = 1, 1 })
	send := func() int {
		return h.do(t, encodings[0].build("/createDatabaseConnection", connectionFieldsFor(testEnv))).status
	}
	if got := send(); got != http.StatusCreated {
		t.Fatalf("first: %d", got)
	}
	if got := send(); got != http.StatusTooManyRequests {
		t.Fatalf("second within the same instant: %d, want 429", got)
	}
}

func TestLimiterForgetsIdleCallers(t *testing.T) {
	now := testNow
	l := newLimiter(1, 2, func() time.Time { return now })
	for i := 0; i < maxBuckets; i++ {
		l.take(strconv.Itoa(i))
	}
	now = now.Add(time.Hour)
	l.take("new")
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets kept, want only the new one", len(l.buckets))
	}
}
