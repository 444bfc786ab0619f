package flink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxBodyBytes caps how much of an answer is read; Flink truncates its own
// error bodies to the REST endpoint's maximum content length (100 MiB by
// default), but nothing cdcq reads comes near this.
const maxBodyBytes = 8 << 20

// rest sends JSON requests to one Flink REST endpoint.
type rest struct {
	service string
	base    string // URL without a trailing slash
	timeout time.Duration
	client  *http.Client
	header  http.Header
}

// do sends one request and decodes a 2xx answer into out (when out is not
// nil). path may carry a query. It returns the status code of a 2xx answer,
// an *APIError for any other answer and a *TransportError when no answer
// came.
func (r *rest) do(ctx context.Context, method, path string, in, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()

	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("%s: encode %s %s: %w", r.service, method, path, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, body)
	if err != nil {
		return 0, fmt.Errorf("%s: build %s %s: %w", r.service, method, path, withoutURL(err))
	}
	for k, vs := range r.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := r.client.Do(req)
	if err != nil {
		return 0, &TransportError{Service: r.service, Method: method, Path: path, Err: withoutURL(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return 0, &TransportError{Service: r.service, Method: method, Path: path, Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode >= 400 {
		e := parseAPIError(r.service, method, path, resp.StatusCode, data)
		// A proxy in front of Flink may repeat the request's headers,
		// credentials included.
		for _, vs := range r.header {
			for _, v := range vs {
				for i := range e.Errors {
					if len(v) >= 4 {
						e.Errors[i] = strings.ReplaceAll(e.Errors[i], v, "***")
					}
				}
			}
		}
		return 0, e
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return 0, fmt.Errorf("%s %s %s: decode %d answer: %w", r.service, method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, nil
}

// withoutURL drops the URL that *url.Error repeats: it may carry
// credentials in its user part.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func parseAPIError(service, method, path string, status int, data []byte) *APIError {
	e := &APIError{Service: service, Method: method, Path: path, StatusCode: status}
	var body struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(data, &body) == nil && len(body.Errors) > 0 {
		e.Errors = body.Errors
		return e
	}
	text := strings.TrimSpace(string(data))
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	if text == "" {
		text = http.StatusText(status)
	}
	e.Errors = []string{text}
	return e
}

// pathSegment escapes one id for a URL path and refuses an empty one.
func pathSegment(what, id string) (string, error) {
	if strings.TrimSpace(id) == "" {
		return "", fmt.Errorf("flink: %s is empty", what)
	}
	return url.PathEscape(id), nil
}
