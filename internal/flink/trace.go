package flink

import (
	"strings"
)

// Exception is one link of a Java exception chain as Flink prints it
// (Throwable.printStackTrace): "class: message", frames, then "Caused by:
// class: message" for each cause.
type Exception struct {
	// Class is the fully qualified class name.
	Class string
	// Message may span several lines (a parse error quotes the statement).
	Message string
}

// SimpleClass is the class name without its package.
func (e Exception) SimpleClass() string {
	return e.Class[strings.LastIndex(e.Class, ".")+1:]
}

func (e Exception) firstLine() string { return firstLine(e.Message) }

// ParseTrace splits a printed Java stack trace into its exception chain,
// outermost first. It accepts the "<Exception on server side: ... End of
// exception on server side>" wrapper of Flink's REST errors and ignores
// frames, "... n more" lines and suppressed exceptions. Text that holds no
// exception header gives nil.
func ParseTrace(trace string) []Exception {
	trace = strings.TrimSpace(trace)
	trace = strings.TrimPrefix(trace, "<Exception on server side:")
	trace = strings.TrimSuffix(trace, "End of exception on server side>")
	var (
		chain []Exception
		cur   *Exception
		// inMessage: the lines after a header belong to its message until
		// the first frame.
		inMessage bool
	)
	for _, line := range strings.Split(strings.ReplaceAll(trace, "\r\n", "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "Caused by: "):
			if e, ok := parseHeader(strings.TrimPrefix(line, "Caused by: ")); ok {
				chain = append(chain, e)
				cur, inMessage = &chain[len(chain)-1], true
				continue
			}
		case isFrame(line):
			inMessage = false
			continue
		case cur == nil:
			if strings.TrimSpace(line) == "" {
				continue
			}
			if e, ok := parseHeader(strings.TrimSpace(line)); ok {
				chain = append(chain, e)
				cur, inMessage = &chain[len(chain)-1], true
				continue
			}
			// Text before the first header (a plain message) is not part
			// of a chain.
			return nil
		}
		if inMessage && cur != nil {
			cur.Message += "\n" + line
		}
	}
	for i := range chain {
		chain[i].Message = strings.TrimRight(chain[i].Message, " \t\n")
	}
	return chain
}

// isFrame reports a stack frame, an elision or a suppressed exception (all
// indented).
func isFrame(line string) bool {
	t := strings.TrimLeft(line, " \t")
	if len(t) == len(line) {
		return false
	}
	return strings.HasPrefix(t, "at ") || strings.HasPrefix(t, "... ") || strings.HasPrefix(t, "Suppressed: ") || strings.HasPrefix(t, "Caused by: ")
}

// parseHeader reads "pkg.Class: message" or "pkg.Class".
func parseHeader(s string) (Exception, bool) {
	class, msg, _ := strings.Cut(s, ": ")
	if !isClassName(class) {
		return Exception{}, false
	}
	return Exception{Class: class, Message: msg}, true
}

// isClassName accepts a dotted Java class name whose last part starts with
// an upper-case letter (java.lang.RuntimeException, a.b.C$Inner).
func isClassName(s string) bool {
	if s == "" || strings.ContainsAny(s, " \t") || !strings.Contains(s, ".") {
		return false
	}
	parts := strings.Split(s, ".")
	for _, p := range parts {
		if p == "" {
			return false
		}
		for _, r := range p {
			if !(r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return false
			}
		}
	}
	last := parts[len(parts)-1]
	return last[0] >= 'A' && last[0] <= 'Z'
}

// wrapperClasses add nothing to the cause they carry: the gateway's and
// REST layer's wrappers, futures, and the scheduler's "Recovery is
// suppressed" envelope.
var wrapperClasses = map[string]bool{
	"SqlGatewayException":   true,
	"SqlExecutionException": true,
	"RestHandlerException":  true,
	"CompletionException":   true,
	"ExecutionException":    true,
	"JobException":          true,
}

// transientClasses name failures that retrying can outlive: the cluster
// could not be reached or answered too late.
var transientClasses = map[string]bool{
	"ConnectException":              true,
	"SocketTimeoutException":        true,
	"TimeoutException":              true,
	"UnknownHostException":          true,
	"NoRouteToHostException":        true,
	"RecipientUnreachableException": true,
	"FencingTokenException":         true,
	"NoResourceAvailableException":  true,
	"RpcConnectionException":        true,
}

// Transient reports whether a chain names a connection problem or a
// timeout anywhere, so that the same request may succeed later.
func Transient(chain []Exception) bool {
	for _, e := range chain {
		if transientClasses[e.SimpleClass()] {
			return true
		}
	}
	return false
}

// isOperationFailure reports a chain that the gateway raised because a
// statement's operation failed.
func isOperationFailure(chain []Exception) bool {
	for _, e := range chain {
		if e.SimpleClass() == "SqlExecutionException" || strings.HasPrefix(e.Message, "Failed to execute the operation") {
			return true
		}
	}
	return false
}

// maxReason caps a summary: messages may quote a whole record.
const maxReason = 600

// Summarize picks what a person needs from an exception chain: the first
// line of the root cause, with the outermost meaningful exception as
// context when that one says more. Wrappers (the gateway's
// SqlGatewayException and SqlExecutionException, futures' exceptions,
// "Recovery is suppressed" JobExceptions, and any exception whose message
// is just its cause printed) are skipped. For example
//
//	ValidationException: SQL validation failed. From line 1, column 8 to line 1, column 21: Column 'x' not found in any table
//	SqlParserException: SQL parse failed. Encountered "FORM" at line 1, column 10. (caused by ParseException: ...)
//	TableException: Failed to execute sql (caused by ConnectException: Connection refused)
func Summarize(chain []Exception) string {
	if len(chain) == 0 {
		return ""
	}
	// The root: the innermost exception that says something.
	root := chain[len(chain)-1]
	for i := len(chain) - 1; i >= 0; i-- {
		if chain[i].firstLine() != "" {
			root = chain[i]
			break
		}
	}
	var outer *Exception
	for i := range chain {
		e := chain[i]
		if wrapperClasses[e.SimpleClass()] || e.firstLine() == "" || quotesCause(chain, i) {
			continue
		}
		outer = &chain[i]
		break
	}
	rootText := root.SimpleClass()
	if l := root.firstLine(); l != "" {
		rootText += ": " + l
	}
	var out string
	switch {
	case outer == nil || outer.Class == root.Class && outer.Message == root.Message:
		out = rootText
	case root.firstLine() == "" || strings.Contains(outer.firstLine(), root.firstLine()):
		out = outer.SimpleClass() + ": " + outer.firstLine()
	default:
		out = outer.SimpleClass() + ": " + outer.firstLine() + " (caused by " + rootText + ")"
	}
	if len(out) > maxReason {
		out = out[:maxReason] + "..."
	}
	return out
}

// quotesCause reports an exception whose message is a later exception of
// the chain printed as "class: message" (new RuntimeException(cause)).
func quotesCause(chain []Exception, i int) bool {
	msg := strings.TrimSpace(chain[i].Message)
	for _, c := range chain[i+1:] {
		if strings.HasPrefix(msg, c.Class) {
			return true
		}
	}
	return false
}
