package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Defaults of the rate limit of POST and DELETE requests: each caller
// (bearer token, or client address without authentication) may send
// DefaultWriteRate of them per second, in bursts of up to
// DefaultWriteBurst.
const (
	DefaultWriteRate  = 50.0
	DefaultWriteBurst = 200
)

// maxBuckets bounds the limiter's memory: past it, buckets that are full
// again (their callers idle) are dropped.
const maxBuckets = 10000

// limiter is a token bucket per caller.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*bucket{}}
}

// take spends one token of key's bucket. When none is left it returns how
// long until one is.
func (l *limiter) take(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.dropFull(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

func (l *limiter) dropFull(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// limitWrites answers 429 with Retry-After when the caller has used up its
// rate of POST and DELETE requests. It runs after authenticate, so a caller
// is its token; without authentication it is its address.
func (s *Server) limitWrites(c *fiber.Ctx) error {
	key, _ := c.Locals(keyCaller).(string)
	if key == "" {
		key = "addr:" + c.IP()
	}
	ok, wait := s.writes.take(key)
	if ok {
		return c.Next()
	}
	secs := strconv.Itoa(max(int(math.Ceil(wait.Seconds())), 1))
	c.Set(fiber.HeaderRetryAfter, secs)
	return newError(http.StatusTooManyRequests, CodeRateLimited, "", "too many POST and DELETE requests: "+
		"at most "+strconv.FormatFloat(s.writes.rate, 'f', -1, 64)+" per second, in bursts of "+strconv.Itoa(int(s.writes.burst))+
		"; retry after "+secs+" s (Retry-After)")
}
