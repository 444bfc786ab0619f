package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/cdcq/cdcq/internal/connstr"
	"github.com/cdcq/cdcq/internal/names"
)

// Request field names, as the original API spells them.
const (
	fieldConnectionString = "connectionString"
	fieldEnvironmentID    = "environmentId"
	fieldSchema           = "schema"
	fieldSQLQuery         = "sqlQuery"
)

const (
	mimeJSON = "application/json"
	mimeForm = "application/x-www-form-urlencoded"
)

// requestBody holds every field a POST endpoint takes; each endpoint reads
// the ones it names.
type requestBody struct {
	ConnectionString string `json:"connectionString"`
	EnvironmentID    string `json:"environmentId"`
	Schema           string `json:"schema"`
	SQLQuery         string `json:"sqlQuery"`
}

func (b *requestBody) field(name string) *string {
	switch name {
	case fieldConnectionString:
		return &b.ConnectionString
	case fieldEnvironmentID:
		return &b.EnvironmentID
	case fieldSchema:
		return &b.Schema
	case fieldSQLQuery:
		return &b.SQLQuery
	}
	return nil
}

// decodeBody reads a form or JSON body and checks that each of fields is
// present and not blank. Values are copied out of Fiber's buffers.
func decodeBody(c *fiber.Ctx, fields []string) (requestBody, error) {
	var b requestBody
	if enc := strings.TrimSpace(c.Get(fiber.HeaderContentEncoding)); enc != "" && !strings.EqualFold(enc, "identity") {
		// Decompressing would let a small body grow past BodyLimit.
		return b, badRequest(CodeUnsupportedEncoding, "Content-Encoding is not supported; send the body uncompressed")
	}
	mediaType, err := contentType(c.Get(fiber.HeaderContentType))
	if err != nil {
		return b, err
	}
	raw := c.BodyRaw()
	switch mediaType {
	case mimeJSON:
		err = decodeJSON(raw, &b)
	case mimeForm:
		err = decodeForm(raw, fields, &b)
	}
	if err != nil {
		return b, err
	}
	for _, f := range fields {
		if strings.TrimSpace(*b.field(f)) == "" {
			return b, unprocessable(CodeMissingField, f, f+" is missing or empty")
		}
	}
	return b, nil
}

// contentType returns the accepted media type named by header, or the 400
// to answer.
func contentType(header string) (string, error) {
	accepted := "send " + mimeJSON + " or " + mimeForm
	if strings.TrimSpace(header) == "" {
		return "", badRequest(CodeUnsupportedContentType, "the request has no Content-Type; "+accepted)
	}
	mediaType, params, err := mime.ParseMediaType(header)
	if err != nil {
		return "", badRequest(CodeUnsupportedContentType, "the Content-Type header is malformed; "+accepted)
	}
	if mediaType != mimeJSON && mediaType != mimeForm {
		return "", badRequest(CodeUnsupportedContentType, fmt.Sprintf("Content-Type %s is not accepted; %s", mediaType, accepted))
	}
	if cs, ok := params["charset"]; ok {
		switch strings.ToLower(cs) {
		case "utf-8", "utf8", "us-ascii":
		default:
			return "", badRequest(CodeUnsupportedContentType, fmt.Sprintf("charset %q is not accepted; send UTF-8", cs))
		}
	}
	return mediaType, nil
}

func decodeJSON(raw []byte, b *requestBody) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	// Unknown fields are ignored: unlike a form, a JSON body cannot be
	// split by an unencoded character, and newer callers may send more.
	err := dec.Decode(b)
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		return badRequest(CodeMalformedJSON, "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest(CodeMalformedJSON, "the JSON body ends before the object is complete")
	case errors.As(err, &syntaxErr):
		line, col := position(raw, syntaxErr.Offset)
		return badRequest(CodeMalformedJSON, fmt.Sprintf("the body is not valid JSON at line %d, column %d: %s",
			line, col, quotedChar.ReplaceAllString(syntaxErr.Error(), "invalid character")))
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return unprocessable(CodeInvalidField, typeErr.Field, fmt.Sprintf("%s must be a string, not a JSON %s", typeErr.Field, typeErr.Value))
	case errors.As(err, &typeErr):
		return badRequest(CodeMalformedJSON, fmt.Sprintf("the body must be a JSON object, not a JSON %s", typeErr.Value))
	default:
		return badRequest(CodeMalformedJSON, "the body is not valid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		line, col := position(raw, dec.InputOffset())
		return badRequest(CodeMalformedJSON, fmt.Sprintf("the body has data after the JSON object at line %d, column %d", line, col))
	}
	return nil
}

// quotedChar matches the character encoding/json quotes in a syntax error;
// it is dropped because it may be a character of a password.
var quotedChar = regexp.MustCompile(`invalid character '(?:\\.|[^'])*'`)

// position turns a byte offset into a 1-based line and column.
func position(raw []byte, offset int64) (line, col int) {
	if offset > int64(len(raw)) {
		offset = int64(len(raw))
	}
	before := raw[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	if col == 0 {
		col = 1
	}
	return line, col
}

// decodeForm reads an application/x-www-form-urlencoded body. Fields the
// endpoint does not take are refused without naming them: they are most
// often the tail of a connection string split at an unencoded '&', and may
// hold part of a password.
func decodeForm(raw []byte, fields []string, b *requestBody) error {
	var args fasthttp.Args
	args.ParseBytes(raw)
	counts := make(map[string]int, len(fields))
	unknown := 0
	args.VisitAll(func(k, v []byte) {
		key := string(k)
		if key == "" && len(v) == 0 {
			return
		}
		for _, f := range fields {
			if key == f {
				counts[f]++
				*b.field(f) = string(v)
				return
			}
		}
		unknown++
	})
	if unknown > 0 {
		return unprocessable(CodeUnknownField, "", fmt.Sprintf(
			"the form has %d field(s) besides %s; an unencoded '&' in connectionString splits the form: "+
				"URL-encode the value (curl --data-urlencode)", unknown, strings.Join(fields, ", ")))
	}
	for _, f := range fields {
		if counts[f] > 1 {
			return unprocessable(CodeDuplicateField, f, fmt.Sprintf("%s is given %d times; give it once", f, counts[f]))
		}
	}
	return nil
}

// parseConnection checks a connection string. The message carries connstr's
// reason, which never repeats the string.
func parseConnection(s string) (connstr.Conn, error) {
	conn, _, err := connstr.ParseDriver(s)
	if err != nil {
		return connstr.Conn{}, unprocessable(CodeInvalidConnectionString, fieldConnectionString, fieldConnectionString+" "+err.Error())
	}
	return conn, nil
}

func checkEnvironmentID(id string) error {
	if err := names.ValidateEnvironmentID(id); err != nil {
		return unprocessable(CodeInvalidEnvironmentID, fieldEnvironmentID, fieldEnvironmentID+" "+err.Error())
	}
	return nil
}
