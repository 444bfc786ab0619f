package sqlplan

import (
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/cdcq/cdcq/internal/prismaschema"
)

// tzReason explains why a conversion between local and zoned time is
// refused.
const tzReason = "the conversion between timestamp (or date) and timestamptz depends on the session time zone; make it explicit with AT TIME ZONE, e.g. col AT TIME ZONE 'UTC'"

// commonType returns the type PostgreSQL would convert a and b to when they
// meet in a comparison, CASE, IN, COALESCE and the like, or a reason why
// they cannot meet. A string literal (unknown) takes the other type.
func commonType(a, b Type) (Type, string) {
	switch {
	case a.IsUnknown() && b.IsUnknown():
		return TypeOf(KindText), ""
	case a.IsUnknown():
		return b.Base(), ""
	case b.IsUnknown():
		return a.Base(), ""
	case a == b:
		return a, ""
	case a.Array != b.Array:
		return Type{}, "incompatible types"
	case a.Array:
		t, reason := commonType(a.Elem(), b.Elem())
		if reason != "" {
			return Type{}, reason
		}
		return ArrayType(t), ""
	case a.IsNumeric() && b.IsNumeric():
		return promote(a, b), ""
	case a.IsString() && b.IsString():
		if a.Kind == b.Kind {
			return a.Base(), ""
		}
		return TypeOf(KindText), ""
	case a.Kind == b.Kind && a.Name == b.Name && a.Schema == b.Schema:
		return a.Base(), ""
	}
	dt := func(t Type) bool { return t.Kind == KindDate || t.Kind == KindTimestamp }
	switch {
	case dt(a) && dt(b):
		return TypeOf(KindTimestamp), ""
	case dt(a) && b.Kind == KindTimestamptz, dt(b) && a.Kind == KindTimestamptz:
		return Type{}, tzReason
	}
	return Type{}, "incompatible types"
}

// promote returns the type arithmetic on two numbers gives in PostgreSQL:
// the wider integer; real for two reals; double precision when a float is
// involved; numeric otherwise. Modifiers are dropped.
func promote(a, b Type) Type {
	switch {
	case a.IsInteger() && b.IsInteger():
		if integerRank(a.Kind) >= integerRank(b.Kind) {
			return a.Base()
		}
		return b.Base()
	case a.Kind == KindReal && b.Kind == KindReal:
		return TypeOf(KindReal)
	case a.IsFloat() || b.IsFloat():
		return TypeOf(KindDouble)
	}
	return TypeOf(KindNumeric)
}

// needsCast reports whether a value of type from must be converted to be
// used as type to (varchar and text share a representation, and so do
// types that differ only in modifiers).
func needsCast(from, to Type) bool {
	if from.Array != to.Array {
		return true
	}
	if from.Kind == to.Kind {
		return from.Name != to.Name || from.Schema != to.Schema
	}
	str := func(k Kind) bool { return k == KindText || k == KindVarchar }
	return !(str(from.Kind) && str(to.Kind))
}

// hasEquality reports whether PostgreSQL can compare values of t for
// equality (json cannot).
func hasEquality(t Type) bool {
	return t.Elem().Kind != KindJSON
}

// hasOrdering reports whether PostgreSQL can order values of t.
func hasOrdering(t Type) bool {
	return t.Elem().Kind != KindJSON
}

// castReason returns why an explicit cast from one type to another is
// refused, or "".
func castReason(from, to Type) string {
	if from.IsUnknown() || from.Base() == to.Base() {
		return ""
	}
	if to.IsString() && !to.Array {
		if from.Elem().Kind == KindTimestamptz || from.Elem().Kind == KindTimetz {
			return "the text of a " + from.Kind.String() + " depends on the session time zone; convert it with AT TIME ZONE first"
		}
		return ""
	}
	if from.Array || to.Array {
		if from.Array && to.Array && castReason(from.Elem(), to.Elem()) == "" {
			return ""
		}
		return "cannot cast type " + from.String() + " to " + to.String()
	}
	if from.IsString() {
		if to.Kind == KindTimestamptz || to.Kind == KindTimetz {
			return "reading text as " + to.Kind.String() + " depends on the session time zone when the text has no offset"
		}
		return ""
	}
	local := func(k Kind) bool { return k == KindDate || k == KindTimestamp || k == KindTime }
	switch {
	case from.IsNumeric() && to.IsNumeric():
		return ""
	case from.Kind == KindBoolean && to.Kind == KindInteger, from.Kind == KindInteger && to.Kind == KindBoolean:
		return ""
	case from.Kind == KindDate && to.Kind == KindTimestamp,
		from.Kind == KindTimestamp && (to.Kind == KindDate || to.Kind == KindTime),
		from.Kind == KindTimetz && to.Kind == KindTime,
		from.Kind == KindTime && to.Kind == KindInterval,
		from.Kind == KindInterval && to.Kind == KindTime:
		return ""
	case from.Kind == KindTimestamptz && local(to.Kind), local(from.Kind) && to.Kind == KindTimestamptz,
		from.Kind == KindTime && to.Kind == KindTimetz:
		return tzReason
	case from.Kind == KindJSON && to.Kind == KindJSONB, from.Kind == KindJSONB && to.Kind == KindJSON:
		return ""
	case from.Kind == KindJSONB && (to.IsNumeric() || to.Kind == KindBoolean):
		return ""
	}
	return "cannot cast type " + from.String() + " to " + to.String()
}

// convert returns e as a value of type to, which must be a type e can reach
// implicitly (commonType's answer): a literal is converted (and checked)
// in place, anything else gets an implicit Cast when the representation
// changes.
func (c *compiler) convert(e Expr, to Type) (Expr, error) {
	from := e.ResultType()
	if from == to {
		return e, nil
	}
	if k, ok := e.(*Const); ok && (from.IsUnknown() || k.Null || widens(from, to)) {
		return c.retype(k, to)
	}
	if from.IsUnknown() || to.IsUnknown() || !needsCast(from, to) {
		return e, nil
	}
	return c.note(&Cast{X: e, Type: to, Implicit: true}, c.locs[e]), nil
}

// widens reports whether every number of type from is, written the same,
// a number of type to.
func widens(from, to Type) bool {
	switch {
	case !from.IsNumeric() || !to.IsNumeric():
		return false
	case to.IsInteger():
		return from.IsInteger() && integerRank(to.Kind) >= integerRank(from.Kind)
	}
	return true
}

// unify finds the common type of es, for the construct named what (CASE,
// IN, COALESCE, ...), and converts them to it.
func (c *compiler) unify(what string, es []Expr) ([]Expr, Type, error) {
	t := TypeOf(KindUnknown)
	for i, e := range es {
		if e == nil {
			continue
		}
		next, reason := commonType(t, e.ResultType())
		if reason != "" {
			msg := what + " types " + t.String() + " and " + e.ResultType().String() + " cannot be matched"
			if reason == tzReason {
				msg += ": " + reason
			}
			return nil, Type{}, c.errAt(c.locOf(es, i), "%s", msg)
		}
		t = next
	}
	if t.IsUnknown() {
		t = TypeOf(KindText)
	}
	out := make([]Expr, len(es))
	for i, e := range es {
		if e == nil {
			continue
		}
		x, err := c.convert(e, t)
		if err != nil {
			return nil, Type{}, err
		}
		out[i] = x
	}
	return out, t, nil
}

func (c *compiler) locOf(es []Expr, i int) int {
	if l, ok := c.locs[es[i]]; ok {
		return l
	}
	return -1
}

// finish resolves a literal whose type is still unknown to text, as
// PostgreSQL does for output columns.
func (c *compiler) finish(e Expr) Expr {
	if e.ResultType().IsUnknown() {
		if k, ok := e.(*Const); ok {
			x, err := c.retype(k, TypeOf(KindText))
			if err == nil {
				return x
			}
		}
	}
	return e
}

// note records where e came from and returns it.
func (c *compiler) note(e Expr, loc int) Expr {
	if _, ok := c.locs[e]; !ok {
		c.locs[e] = loc
	}
	return e
}

// retype converts a constant to type to, checking a string literal against
// the input syntax of types where a mistake is easy to make.
func (c *compiler) retype(k *Const, to Type) (Expr, error) {
	loc := c.locs[k]
	out := &Const{Value: k.Value, Type: to, Null: k.Null}
	if k.Null || !k.Type.IsUnknown() || to.Array {
		return c.note(out, loc), nil
	}
	s := k.Text()
	bad := func() error {
		return c.errAt(loc, "invalid input syntax for type %s: %s", to.Base(), strconv.Quote(s))
	}
	trimmed := strings.TrimSpace(s)
	switch {
	case to.IsInteger():
		n, ok := new(big.Int).SetString(trimmed, 10)
		if !ok {
			return nil, bad()
		}
		if !fitsInteger(n, to.Kind) {
			return nil, c.errAt(loc, "value %s is out of range for type %s", strconv.Quote(s), to)
		}
		out.Value = n.String()
	case to.Kind == KindNumeric || to.IsFloat():
		switch strings.ToLower(trimmed) {
		case "nan", "infinity", "+infinity", "-infinity", "inf", "+inf", "-inf":
			out.Value = quoteLiteral(trimmed)
		default:
			if !numberRE.MatchString(trimmed) {
				return nil, bad()
			}
			out.Value = strings.TrimPrefix(trimmed, "+")
		}
	case to.Kind == KindBoolean:
		v, ok := parseBool(trimmed)
		if !ok {
			return nil, bad()
		}
		out.Value = "FALSE"
		if v {
			out.Value = "TRUE"
		}
	case to.Kind == KindUUID:
		u, ok := CanonicalUUID(trimmed)
		if !ok {
			return nil, bad()
		}
		out.Value = quoteLiteral(u)
	case to.Kind == KindEnum:
		e := c.enumOf(to)
		if e != nil && !hasLabel(e, s) {
			err := c.errAt(loc, "invalid input value for enum %s: %s", to, strconv.Quote(s))
			err.Suggestion = suggestLabel(e, s)
			return nil, err
		}
	case to.Kind == KindTimestamptz:
		if !hasZone(trimmed) {
			return nil, c.errAt(loc, "timestamptz literal %s has no time zone offset, so its meaning depends on the session time zone; write one, e.g. '%s 00:00:00+00'",
				quoteLiteral(s), strings.SplitN(trimmed, " ", 2)[0])
		}
	}
	return c.note(out, loc), nil
}

var numberRE = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)

func fitsInteger(n *big.Int, k Kind) bool {
	if !n.IsInt64() {
		return false
	}
	v := n.Int64()
	switch k {
	case KindSmallint:
		return v >= -1<<15 && v < 1<<15
	case KindInteger:
		return v >= -1<<31 && v < 1<<31
	}
	return true
}

// parseBool accepts what PostgreSQL's boolean input accepts: true, yes, on,
// 1 and their opposites, any unique prefix of the words, in any case.
func parseBool(s string) (bool, bool) {
	l := strings.ToLower(s)
	if l == "" {
		return false, false
	}
	switch l {
	case "1", "on":
		return true, true
	case "0", "of", "off":
		return false, true
	}
	for _, w := range []string{"true", "yes"} {
		if strings.HasPrefix(w, l) {
			return true, true
		}
	}
	for _, w := range []string{"false", "no"} {
		if strings.HasPrefix(w, l) {
			return false, true
		}
	}
	return false, false
}

// CanonicalUUID reads a uuid literal as PostgreSQL accepts it (hex digits,
// hyphens between groups of four digits, optional braces around it all)
// and returns the standard lower-case form.
func CanonicalUUID(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}' {
		s = s[1 : len(s)-1]
	}
	hex := make([]byte, 0, 32)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch >= '0' && ch <= '9', ch >= 'a' && ch <= 'f':
			hex = append(hex, ch)
		case ch >= 'A' && ch <= 'F':
			hex = append(hex, ch+'a'-'A')
		case ch == '-' && len(hex)%4 == 0 && len(hex) > 0 && i+1 < len(s) && s[i+1] != '-':
		default:
			return "", false
		}
	}
	if len(hex) != 32 {
		return "", false
	}
	h := string(hex)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
}

var zoneRE = regexp.MustCompile(`(?i)\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(z|[+-]\d{1,2}(:?\d{2}){0,2}|[a-z]+(/[a-z_+\-0-9]+)+|[a-z]{2,5}([+-]\d{1,2})?)$`)

// hasZone reports whether a timestamptz literal says its offset or zone,
// or is one of the special values.
func hasZone(s string) bool {
	l := strings.ToLower(s)
	switch l {
	case "epoch", "infinity", "+infinity", "-infinity":
		return true
	}
	if strings.HasSuffix(l, " am") || strings.HasSuffix(l, " pm") {
		return false
	}
	return zoneRE.MatchString(l)
}

func (c *compiler) enumOf(t Type) *prismaschema.Enum {
	for _, e := range c.schema.Enums {
		if e.Name == t.Name && e.Schema == t.Schema {
			return e
		}
	}
	return nil
}

func hasLabel(e *prismaschema.Enum, s string) bool {
	for _, v := range e.Values {
		if v.Name == s {
			return true
		}
	}
	return false
}

func suggestLabel(e *prismaschema.Enum, s string) string {
	var labels []string
	for _, v := range e.Values {
		if v.ValueName == s || strings.EqualFold(v.Name, s) {
			return v.Name
		}
		labels = append(labels, v.Name)
	}
	return suggest(s, labels)
}

// quoteLiteral returns s as a standard SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// unquoteLiteral reverses quoteLiteral.
func unquoteLiteral(s string) string {
	return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
}
