package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/projections"
)

// StateStarting is the state of a query whose engine has written no result
// yet.
const StateStarting = "STARTING"

// Bounds of the result endpoints' parameters.
const (
	// MaxWait bounds ?wait=.
	MaxWait = 60 * time.Second
	// MaxLimit bounds ?limit=.
	MaxLimit = 100000
	// keepAlive is how often a quiet event stream sends a comment, so
	// that proxies and clients see it is alive and a gone client is
	// noticed.
	keepAlive = 15 * time.Second
)

// CachedQueryResult answers GET /cachedQueries/{id}/result: the result's
// columns (in SELECT order), its rows (objects with exactly those columns,
// in key order; null while there is no complete result), and what they
// reflect.
type CachedQueryResult struct {
	resultHead
	Rows []json.RawMessage `json:"rows"`
}

// resultHead is the answer without its rows, which are spliced in as the
// result holds them encoded.
type resultHead struct {
	ID     string      `json:"id"`
	Name   string      `json:"name"`
	Status jobs.Status `json:"status"`
	QueryResult
	Columns []ResultColumn `json:"columns"`
	// Next is the ?after= token of the next page when this page is not
	// the last.
	Next string `json:"next,omitempty"`
}

// result reads the result of the query named in the path.
func (s *Server) result(c *fiber.Ctx) (ResultView, error) {
	id := strings.Clone(c.Params("queryId"))
	c.Locals(keyQueryID, id)
	ctx, cancel := s.backendContext(c)
	defer cancel()
	res, err := s.cfg.Results.Result(ctx, id)
	if err != nil {
		return nil, resultError(id, err)
	}
	c.Locals(keyEnvironmentID, res.Query().EnvironmentID)
	return res, nil
}

func resultError(id string, err error) error {
	switch {
	case errors.Is(err, projections.ErrNotFound):
		return newError(http.StatusNotFound, CodeNotFound, "id", fmt.Sprintf("there is no cached query with id %q", id))
	case errors.Is(err, ErrBadPosition):
		return newError(http.StatusBadRequest, CodeInvalidParameter, "since", err.Error())
	}
	return statusUnavailable(fmt.Errorf("read result of %s: %w", id, err))
}

// resultParams are GET .../result's parameters.
type resultParams struct {
	limit int // 0: every row
	after string
	wait  time.Duration
}

func parseResultParams(c *fiber.Ctx) (resultParams, error) {
	var p resultParams
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return p, newError(http.StatusBadRequest, CodeInvalidParameter, "limit",
				fmt.Sprintf("limit %q: want a whole number from 1 to %d", v, MaxLimit))
		}
		p.limit = n
	}
	p.after = c.Query("after")
	if p.after != "" && p.limit == 0 {
		p.limit = math.MaxInt
	}
	if v := c.Query("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			secs, serr := strconv.Atoi(v)
			d, err = time.Duration(secs)*time.Second, serr
		}
		if err != nil || d <= 0 || d > MaxWait {
			return p, newError(http.StatusBadRequest, CodeInvalidParameter, "wait",
				fmt.Sprintf("wait %q: want a duration such as 10s, at most %s", v, MaxWait))
		}
		p.wait = d
	}
	return p, nil
}

// getCachedQueryResult serves the materialised result from memory; it
// never runs the query against the source database. The ETag is the
// result's position: If-None-Match answers 304 while it holds, and with
// ?wait= it waits for a change first (a long poll).
func (s *Server) getCachedQueryResult(c *fiber.Ctx) error {
	if s.cfg.Results == nil {
		return newError(http.StatusNotFound, CodeNotFound, "id", "this deployment materialises no results")
	}
	params, err := parseResultParams(c)
	if err != nil {
		return err
	}
	res, err := s.result(c)
	if err != nil {
		return err
	}
	inm := c.Get(fiber.HeaderIfNoneMatch)
	if params.wait > 0 && etagMatches(inm, res.ETag()) {
		id := res.Query().ID
		ctx, cancel := context.WithTimeout(c.UserContext(), params.wait)
		res, err = s.cfg.Results.Wait(ctx, id, res.ETag())
		cancel()
		if err != nil {
			return resultError(id, err)
		}
	}
	c.Set(fiber.HeaderETag, res.ETag())
	c.Set(fiber.HeaderCacheControl, "no-cache")
	if etagMatches(inm, res.ETag()) {
		return c.SendStatus(http.StatusNotModified)
	}
	head, rows, err := resultParts(res, params.limit, params.after)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	// Appended to the response's own buffer: the rows, encoded once per
	// version, are copied, not re-encoded or allocated per request.
	r := c.Response()
	r.ResetBody()
	r.AppendBody(head)
	r.AppendBody(rows)
	r.AppendBody(closingBrace)
	return nil
}

var closingBrace = []byte("}")

// resultParts encodes the answer as a head (every field but the rows, and
// the rows' name) and the rows as the result holds them (all, or a page);
// the answer is head, rows and "}".
func resultParts(res ResultView, limit int, after string) (head, rows []byte, err error) {
	q := res.Query()
	h := resultHead{ID: q.ID, Name: q.Name, Status: q.Status, QueryResult: res.Meta(), Columns: res.Columns()}
	rows = res.Rows()
	if limit > 0 {
		rows, h.Next, err = res.Page(after, limit)
		if err != nil {
			return nil, nil, newError(http.StatusBadRequest, CodeInvalidParameter, "after", err.Error())
		}
	}
	b, err := marshalJSON(h)
	if err != nil {
		return nil, nil, err
	}
	return append(b[:len(b)-1], `,"rows":`...), rows, nil
}

// etagMatches says whether an If-None-Match header names etag.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// getCachedQueryChanges streams the result's changes as Server-Sent
// Events: first the whole result (event "snapshot", as GET .../result
// answers it), or, after a reconnect with Last-Event-ID (or ?since= with
// an event id or a version), the changes after it; then one "change" event
// per changed, added or removed group, each with its position as its id.
// A subscriber that falls too far behind gets an "overflow" event and the
// stream ends; it reconnects with its last event id.
func (s *Server) getCachedQueryChanges(c *fiber.Ctx) error {
	if s.cfg.Results == nil {
		return newError(http.StatusNotFound, CodeNotFound, "id", "this deployment materialises no results")
	}
	id := strings.Clone(c.Params("queryId"))
	c.Locals(keyQueryID, id)
	since := strings.TrimSpace(c.Get("Last-Event-ID"))
	if since == "" {
		since = c.Query("since")
	}
	ctx, cancel := s.backendContext(c)
	sub, err := s.cfg.Results.Subscribe(ctx, id, strings.Clone(since))
	cancel()
	if errors.Is(err, ErrBadPosition) && c.Get("Last-Event-ID") != "" {
		return newError(http.StatusBadRequest, CodeInvalidParameter, "Last-Event-ID", err.Error())
	}
	if err != nil {
		return resultError(id, err)
	}
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	conn := c.Context().Conn()
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer sub.Close()
		s.stream(conn, w, sub)
	})
	return nil
}

// stream writes events until the subscription ends, the client goes away
// or the server shuts down. Each write gets its own deadline: the
// server's write timeout is for whole answers.
func (s *Server) stream(conn net.Conn, w *bufio.Writer, sub ResultSubscription) {
	flush := func() bool {
		if conn != nil {
			conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		}
		return w.Flush() == nil
	}
	// Clients reconnect after a second (the EventSource default is 3).
	w.WriteString("retry: 1000\n\n")
	if !flush() {
		return
	}
	for {
		ctx, cancel := context.WithTimeout(s.streams, keepAlive)
		evs, err := sub.Next(ctx)
		cancel()
		switch {
		case err != nil && s.streams.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			w.WriteString(": keep-alive\n\n")
			if !flush() {
				return
			}
			continue
		case err != nil:
			return
		}
		end := false
		for _, ev := range evs {
			data := ev.Data
			if ev.Result != nil {
				if ev.Event == EventSnapshot {
					var head, rows []byte
					if head, rows, err = resultParts(ev.Result, 0, ""); err == nil {
						data = append(append(head, rows...), '}')
					}
				} else {
					q := ev.Result.Query()
					data, err = marshalJSON(resultHead{ID: q.ID, Name: q.Name, Status: q.Status, QueryResult: ev.Result.Meta(), Columns: ev.Result.Columns()})
				}
				if err != nil {
					s.cfg.Logger.Error("encode result event", "error", err)
					return
				}
			}
			if ev.ID != "" {
				w.WriteString("id: " + ev.ID + "\n")
			}
			w.WriteString("event: " + ev.Event + "\ndata: ")
			w.Write(data)
			w.WriteString("\n\n")
			end = end || ev.Event == EventOverflow
		}
		if !flush() || end {
			return
		}
	}
}
