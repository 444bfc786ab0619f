package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Timeouts for slow or idle clients; the API's requests are small.
const (
	readTimeout  = 30 * time.Second
	writeTimeout = 30 * time.Second
	idleTimeout  = 2 * time.Minute
)

// Server is the HTTP API.
type Server struct {
	cfg         Config
	app         *fiber.App
	tokenHashes [][sha256.Size]byte
	writes      *limiter
	// streams ends with Shutdown, and with it every event stream.
	streams     context.Context
	stopStreams context.CancelFunc
}

// New builds the API from cfg; it refuses a config that fails Validate.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("httpapi config: %w", err)
	}
	s := &Server{cfg: cfg, writes: newLimiter(cfg.WriteRate, cfg.WriteBurst, cfg.Now)}
	s.streams, s.stopStreams = context.WithCancel(context.Background())
	for _, t := range cfg.Tokens {
		s.tokenHashes = append(s.tokenHashes, sha256.Sum256([]byte(strings.TrimSpace(t))))
	}
	s.app = fiber.New(fiber.Config{
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           idleTimeout,
		DisableStartupMessage: true,
		// Reached only by errors raised before routing (a body over the
		// limit, a malformed request line); handler errors are answered
		// by logRequests.
		ErrorHandler: s.answerServerError,
		JSONEncoder:  marshalJSON,
	})
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.app.Use(s.logRequests)
	s.app.Get("/healthz", s.healthz)
	s.app.Post("/createDatabaseConnection", s.authenticate, s.limitWrites, s.createDatabaseConnection)
	s.app.Post("/createCachedQuery", s.authenticate, s.limitWrites, s.createCachedQuery)
	s.app.Post("/deleteDatabaseConnection", s.authenticate, s.limitWrites, s.deleteDatabaseConnection)
	s.app.Post("/checkJobStatus", s.authenticate, s.limitWrites, s.checkJobStatus)
	s.app.Get("/connections/:environmentId", s.authenticate, s.getConnection)
	s.app.Get("/cachedQueries/:queryId", s.authenticate, s.getCachedQuery)
	s.app.Get("/cachedQueries/:queryId/result", s.authenticate, s.getCachedQueryResult)
	s.app.Get("/cachedQueries/:queryId/changes", s.authenticate, s.getCachedQueryChanges)
	s.app.Delete("/cachedQueries/:queryId", s.authenticate, s.limitWrites, s.deleteCachedQuery)
}

// App is the Fiber application, for tests (app.Test) and for mounting.
func (s *Server) App() *fiber.App { return s.app }

// Listen serves on addr (for example ":7000") until Shutdown.
func (s *Server) Listen(addr string) error {
	s.cfg.Logger.Info("http api listening", slog.String("addr", addr))
	return s.app.Listen(addr)
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.cfg.Logger.Info("http api listening", slog.String("addr", ln.Addr().String()))
	return s.app.Listener(ln)
}

// Shutdown stops accepting connections and waits for in-flight requests to
// finish, or for ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopStreams()
	return s.app.ShutdownWithContext(ctx)
}

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// Keys of request-scoped values that logRequests logs.
type logKey int

const (
	keyEnvironmentID logKey = iota
	keyQueryID
	keyCommand
	keyCommandID
	keyCause
	keyCaller // who the write rate limit counts against
)

// logRequests is the one place requests are logged and errors answered. It
// recovers panics into 500s. It logs no bodies, no query strings and no
// headers, so connection strings and tokens cannot reach the log.
func (s *Server) logRequests(c *fiber.Ctx) error {
	start := time.Now()
	if err := nextRecovering(c); err != nil {
		s.answer(c, err)
	}
	s.logRequest(c, start)
	return nil
}

func nextRecovering(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &apiError{
				status: http.StatusInternalServerError,
				detail: ErrorDetail{Code: CodeInternal, Message: "internal error"},
				cause:  fmt.Errorf("panic: %v\n%s", r, debug.Stack()),
			}
		}
	}()
	return c.Next()
}

// answer writes err as a JSON error answer.
func (s *Server) answer(c *fiber.Ctx, err error) {
	ae := toAPIError(err)
	if ae.cause != nil {
		c.Locals(keyCause, ae.cause)
	}
	if ae.status == http.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, "Bearer")
	}
	if err := c.Status(ae.status).JSON(ErrorResponse{Error: ae.detail}); err != nil {
		c.Status(http.StatusInternalServerError)
	}
}

func (s *Server) answerServerError(c *fiber.Ctx, err error) error {
	s.answer(c, err)
	s.logRequest(c, time.Now())
	return nil
}

func (s *Server) logRequest(c *fiber.Ctx, start time.Time) {
	status := c.Response().StatusCode()
	attrs := []slog.Attr{
		slog.String("method", strings.Clone(c.Method())),
		slog.String("path", loggablePath(c.Path())),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
	}
	for _, k := range []struct {
		key   logKey
		label string
	}{{keyEnvironmentID, "environment_id"}, {keyQueryID, "query_id"}, {keyCommand, "command"}, {keyCommandID, "command_id"}} {
		if v, ok := c.Locals(k.key).(string); ok {
			attrs = append(attrs, slog.String(k.label, v))
		}
	}
	level := slog.LevelInfo
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	if cause, ok := c.Locals(keyCause).(error); ok {
		attrs = append(attrs, slog.String("error", scrub(cause.Error())))
	}
	s.cfg.Logger.LogAttrs(c.UserContext(), level, "http request", attrs...)
}

// authenticate demands a bearer token when the config requires one.
func (s *Server) authenticate(c *fiber.Ctx) error {
	if !s.cfg.RequireAuth {
		return c.Next()
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(c.Get(fiber.HeaderAuthorization)), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return newError(http.StatusUnauthorized, CodeUnauthorized, "",
			"this endpoint needs an Authorization: Bearer <token> header")
	}
	h := sha256.Sum256([]byte(token))
	if !s.tokenAccepted(h) {
		return newError(http.StatusUnauthorized, CodeUnauthorized, "", "the bearer token is not accepted")
	}
	c.Locals(keyCaller, "token:"+hex.EncodeToString(h[:8]))
	return c.Next()
}

// tokenAccepted compares hashes, h the presented token's, so that neither
// the length of a token nor which one matched shows in the time taken.
func (s *Server) tokenAccepted(h [sha256.Size]byte) bool {
	match := 0
	for _, want := range s.tokenHashes {
		match |= subtle.ConstantTimeCompare(h[:], want[:])
	}
	return match == 1
}

// backendContext bounds a call to Commands or Status.
func (s *Server) backendContext(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), s.cfg.BackendTimeout)
}

// loggablePath is the request path with any URL password masked, also one
// sent percent-encoded, and cut to a sane length.
func loggablePath(p string) string {
	const max = 256
	unescaped, err := url.PathUnescape(p)
	if err != nil {
		return "<path with bad percent-escapes>"
	}
	p = scrub(unescaped)
	if len(p) > max {
		p = p[:max] + "..."
	}
	return strings.Clone(p)
}

// marshalJSON leaves '&', '<' and '>' readable in messages; answers are
// never embedded in HTML.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
