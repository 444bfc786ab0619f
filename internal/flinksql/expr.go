package flinksql

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cdcq/cdcq/internal/sqlplan"
)

// renderer turns plan expressions into Flink SQL. Row expressions read the
// sources by alias; group expressions (group set) read the grouped
// relation's g1.. and a1.. columns.
type renderer struct {
	plan  *sqlplan.Plan
	group bool
}

func (r *renderer) expr(e sqlplan.Expr) (string, error) {
	switch e := e.(type) {
	case *sqlplan.ColumnRef:
		return r.column(e)
	case *sqlplan.Const:
		return constant(e)
	case *sqlplan.Binary:
		return r.binary(e)
	case *sqlplan.Unary:
		x, err := r.expr(e.X)
		if err != nil {
			return "", err
		}
		switch e.Op {
		case sqlplan.OpNot:
			return "(NOT " + x + ")", nil
		case sqlplan.OpNeg:
			if e.Type.Kind == sqlplan.KindInterval {
				return "", unsupportedf("interval arithmetic (%s)", e)
			}
			// The space keeps "- -1" from reading as a comment.
			return "(- " + x + ")", nil
		}
		return "", unsupportedf("operator %s", e.Op)
	case *sqlplan.IsNull:
		x, err := r.expr(e.X)
		if err != nil {
			return "", err
		}
		if e.Not {
			return "(" + x + " IS NOT NULL)", nil
		}
		return "(" + x + " IS NULL)", nil
	case *sqlplan.In:
		x, err := r.strOperand(e.X)
		if err != nil {
			return "", err
		}
		list, err := r.list(e.List, r.strOperand)
		if err != nil {
			return "", err
		}
		op := " IN ("
		if e.Not {
			op = " NOT IN ("
		}
		return "(" + x + op + list + "))", nil
	case *sqlplan.Between:
		x, err := r.strOperand(e.X)
		if err != nil {
			return "", err
		}
		lo, hi, err := r.pair(e.Lo, e.Hi, r.strOperand)
		if err != nil {
			return "", err
		}
		op := " BETWEEN "
		if e.Not {
			op = " NOT BETWEEN "
		}
		return "(" + x + op + lo + " AND " + hi + ")", nil
	case *sqlplan.Case:
		return r.caseExpr(e)
	case *sqlplan.Cast:
		return r.cast(e)
	case *sqlplan.Func:
		return r.function(e)
	case *sqlplan.AggRef:
		if !r.group {
			return "", fmt.Errorf("flinksql: aggregate %s in a row expression", e)
		}
		return quoteIdent(aggAlias(e.Index)), nil
	case *sqlplan.GroupRef:
		if !r.group {
			return "", fmt.Errorf("flinksql: group key %s in a row expression", e)
		}
		names := r.plan.GroupKeyNames()
		if e.Index < 0 || e.Index >= len(names) {
			return "", fmt.Errorf("flinksql: group key %d out of range", e.Index)
		}
		return groupField(names[e.Index]), nil
	}
	return "", fmt.Errorf("flinksql: unknown expression %T", e)
}

func (r *renderer) list(es []sqlplan.Expr, render func(sqlplan.Expr) (string, error)) (string, error) {
	out := make([]string, len(es))
	for i, e := range es {
		s, err := render(e)
		if err != nil {
			return "", err
		}
		out[i] = s
	}
	return strings.Join(out, ", "), nil
}

// column reads a source column, converting the types that the source
// declares differently (see sourceType).
func (r *renderer) column(c *sqlplan.ColumnRef) (string, error) {
	if r.group {
		return "", fmt.Errorf("flinksql: column %s in a group expression", c)
	}
	if c.Source < 0 || c.Source >= len(r.plan.Sources) {
		return "", fmt.Errorf("flinksql: column %s reads source %d of %d", c.Column, c.Source, len(r.plan.Sources))
	}
	ref := quoteIdent(r.plan.Sources[c.Source].Alias) + "." + quoteIdent(c.Column)
	_, convert, err := sourceType(c.Type)
	if err != nil {
		return "", fmt.Errorf("column %s: %w", c, err)
	}
	if !convert {
		return ref, nil
	}
	ft, err := flinkType(c.Type)
	if err != nil {
		return "", err
	}
	if c.Type.Kind == sqlplan.KindTimestamp {
		return "CAST(" + ref + " AS " + ft + ")", nil
	}
	// date and time: Debezium's ISO text ends in Z, which the casts refuse.
	return "TRY_CAST(REPLACE(" + ref + ", 'Z', '') AS " + ft + ")", nil
}

// strOperand renders an operand of a comparison: a char(n) value loses
// its trailing blanks, as PostgreSQL ignores them when comparing.
func (r *renderer) strOperand(e sqlplan.Expr) (string, error) {
	s, err := r.expr(e)
	if err != nil {
		return "", err
	}
	if t := e.ResultType(); t.Kind == sqlplan.KindChar && !t.Array {
		return "RTRIM(" + s + ")", nil
	}
	return s, nil
}

// value renders an expression whose type decides a CASE's or a
// function's result type: a string literal becomes STRING rather than
// CHAR(n), which Flink would pad to the longest branch.
func (r *renderer) value(e sqlplan.Expr) (string, error) {
	s, err := r.strOperand(e)
	if err != nil {
		return "", err
	}
	if c, ok := e.(*sqlplan.Const); ok && !c.Null && isStringKind(c.Type) {
		return "CAST(" + s + " AS STRING)", nil
	}
	return s, nil
}

func isStringKind(t sqlplan.Type) bool {
	if t.Array {
		return false
	}
	switch t.Kind {
	case sqlplan.KindText, sqlplan.KindVarchar, sqlplan.KindChar, sqlplan.KindUUID, sqlplan.KindJSON,
		sqlplan.KindJSONB, sqlplan.KindEnum, sqlplan.KindOther, sqlplan.KindTimetz:
		return true
	}
	return false
}

func (r *renderer) binary(e *sqlplan.Binary) (string, error) {
	lt, rt := e.L.ResultType(), e.R.ResultType()
	switch e.Op {
	case sqlplan.OpAdd, sqlplan.OpSub, sqlplan.OpMul, sqlplan.OpDiv, sqlplan.OpMod:
		if lt.IsNumeric() && rt.IsNumeric() {
			l, rr, err := r.pair(e.L, e.R, r.expr)
			if err != nil {
				return "", err
			}
			if e.Op == sqlplan.OpMod {
				return "MOD(" + l + ", " + rr + ")", nil
			}
			return "(" + l + " " + string(e.Op) + " " + rr + ")", nil
		}
		return r.temporal(e)
	case sqlplan.OpEq, sqlplan.OpNe, sqlplan.OpLt, sqlplan.OpLe, sqlplan.OpGt, sqlplan.OpGe:
		l, rr, err := r.pair(e.L, e.R, r.strOperand)
		if err != nil {
			return "", err
		}
		return "(" + l + " " + string(e.Op) + " " + rr + ")", nil
	case sqlplan.OpAnd, sqlplan.OpOr:
		l, rr, err := r.pair(e.L, e.R, r.expr)
		if err != nil {
			return "", err
		}
		return "(" + l + " " + string(e.Op) + " " + rr + ")", nil
	case sqlplan.OpConcat:
		l, rr, err := r.pair(e.L, e.R, r.strOperand)
		if err != nil {
			return "", err
		}
		return "(" + l + " || " + rr + ")", nil
	case sqlplan.OpLike, sqlplan.OpNotLike, sqlplan.OpILike, sqlplan.OpNotILike:
		return r.like(e)
	}
	return "", unsupportedf("operator %s", e.Op)
}

func (r *renderer) pair(a, b sqlplan.Expr, render func(sqlplan.Expr) (string, error)) (string, string, error) {
	x, err := render(a)
	if err != nil {
		return "", "", err
	}
	y, err := render(b)
	if err != nil {
		return "", "", err
	}
	return x, y, nil
}

// temporal renders the date and time arithmetic Flink can do the way
// PostgreSQL does.
func (r *renderer) temporal(e *sqlplan.Binary) (string, error) {
	lt, rt := e.L.ResultType(), e.R.ResultType()
	if lt.Kind == sqlplan.KindInterval {
		return "", unsupportedf("%s %s %s: interval arithmetic has no Flink translation", lt, e.Op, rt)
	}
	l, err := r.expr(e.L)
	if err != nil {
		return "", err
	}
	var rr string
	if rt.Kind != sqlplan.KindInterval {
		if rr, err = r.expr(e.R); err != nil {
			return "", err
		}
	}
	isDate := func(t sqlplan.Type) bool { return t.Kind == sqlplan.KindDate && !t.Array }
	switch {
	case e.Op == sqlplan.OpAdd && isDate(lt) && rt.IsInteger():
		return "TIMESTAMPADD(DAY, " + rr + ", " + l + ")", nil
	case e.Op == sqlplan.OpAdd && lt.IsInteger() && isDate(rt):
		return "TIMESTAMPADD(DAY, " + l + ", " + rr + ")", nil
	case e.Op == sqlplan.OpSub && isDate(lt) && rt.IsInteger():
		return "TIMESTAMPADD(DAY, - " + rr + ", " + l + ")", nil
	case e.Op == sqlplan.OpSub && isDate(lt) && isDate(rt):
		return "TIMESTAMPDIFF(DAY, " + rr + ", " + l + ")", nil
	case (e.Op == sqlplan.OpAdd || e.Op == sqlplan.OpSub) && rt.Kind == sqlplan.KindInterval:
		c, ok := e.R.(*sqlplan.Const)
		if !ok || c.Null {
			break
		}
		iv, err := intervalLiteral(c.Text())
		if err != nil {
			return "", err
		}
		switch lt.Kind {
		case sqlplan.KindDate:
			// date ± interval is a timestamp in PostgreSQL.
			l = "CAST(" + l + " AS TIMESTAMP(6))"
		case sqlplan.KindTimestamp, sqlplan.KindTimestamptz, sqlplan.KindTime:
		default:
			return "", unsupportedf("%s %s interval", lt, e.Op)
		}
		return "(" + l + " " + string(e.Op) + " " + iv + ")", nil
	}
	return "", unsupportedf("%s %s %s has no Flink translation (only numbers, date ± integer, date - date, and date/time/timestamp ± a constant interval)", lt, e.Op, rt)
}

func (r *renderer) caseExpr(e *sqlplan.Case) (string, error) {
	var b strings.Builder
	b.WriteString("CASE")
	if e.Operand != nil {
		op, err := r.strOperand(e.Operand)
		if err != nil {
			return "", err
		}
		b.WriteString(" " + op)
	}
	for _, w := range e.Whens {
		cond := r.expr
		if e.Operand != nil {
			cond = r.strOperand
		}
		c, err := cond(w.Cond)
		if err != nil {
			return "", err
		}
		v, err := r.value(w.Result)
		if err != nil {
			return "", err
		}
		b.WriteString(" WHEN " + c + " THEN " + v)
	}
	if e.Else != nil {
		v, err := r.value(e.Else)
		if err != nil {
			return "", err
		}
		b.WriteString(" ELSE " + v)
	}
	b.WriteString(" END")
	return b.String(), nil
}

func (r *renderer) cast(c *sqlplan.Cast) (string, error) {
	from, to := c.X.ResultType(), c.Type
	x, err := r.expr(c.X)
	if err != nil {
		return "", err
	}
	target, err := flinkType(to)
	if err != nil {
		return "", fmt.Errorf("cast to %s: %w", to, err)
	}
	if to.Kind == sqlplan.KindNumeric && !to.Array && to.Precision == sqlplan.NoPrecision && from.IsInteger() {
		// An integer widened to numeric needs no fraction digits, and a
		// narrow DECIMAL keeps Flink's arithmetic from losing scale.
		target = fmt.Sprintf("DECIMAL(%d, 0)", integerDigits(from.Kind))
	}
	if from.Kind == sqlplan.KindChar && !from.Array {
		// PostgreSQL drops char(n)'s padding when it converts the value.
		x = "RTRIM(" + x + ")"
	}
	if to.IsInteger() && (from.Kind == sqlplan.KindNumeric || from.IsFloat()) {
		// PostgreSQL rounds; Flink's cast would truncate.
		return "CAST(ROUND(" + x + ", 0) AS " + target + ")", nil
	}
	if source, err := flinkType(from); err == nil && source == target && from.Kind != sqlplan.KindChar {
		return x, nil
	}
	return "CAST(" + x + " AS " + target + ")", nil
}

func (r *renderer) function(f *sqlplan.Func) (string, error) {
	args := func(render func(sqlplan.Expr) (string, error)) ([]string, error) {
		out := make([]string, len(f.Args))
		for i, a := range f.Args {
			s, err := render(a)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}
	arity := func(lo, hi int) error {
		if len(f.Args) < lo || len(f.Args) > hi {
			return fmt.Errorf("flinksql: %s with %d arguments", f.Name, len(f.Args))
		}
		return nil
	}
	switch f.Name {
	case "coalesce", "nullif":
		a, err := args(r.value)
		if err != nil {
			return "", err
		}
		return strings.ToUpper(f.Name) + "(" + strings.Join(a, ", ") + ")", nil
	case "greatest", "least":
		a, err := args(r.value)
		if err != nil {
			return "", err
		}
		if len(a) == 1 {
			return a[0], nil
		}
		// PostgreSQL ignores NULL arguments; Flink's GREATEST and LEAST
		// return NULL if any is NULL. Each argument falls back to the
		// others, which cannot change the result.
		parts := make([]string, len(a))
		for i := range a {
			others := append([]string{a[i]}, append(append([]string{}, a[:i]...), a[i+1:]...)...)
			parts[i] = "COALESCE(" + strings.Join(others, ", ") + ")"
		}
		return strings.ToUpper(f.Name) + "(" + strings.Join(parts, ", ") + ")", nil
	case "lower", "upper":
		if err := arity(1, 1); err != nil {
			return "", err
		}
		a, err := args(r.strOperand)
		if err != nil {
			return "", err
		}
		return strings.ToUpper(f.Name) + "(" + a[0] + ")", nil
	case "length":
		if err := arity(1, 1); err != nil {
			return "", err
		}
		if f.Args[0].ResultType().Kind == sqlplan.KindBytea {
			return "", unsupportedf("length of bytea")
		}
		a, err := args(r.strOperand)
		if err != nil {
			return "", err
		}
		return "CHAR_LENGTH(" + a[0] + ")", nil
	case "substring":
		if err := arity(2, 3); err != nil {
			return "", err
		}
		a, err := args(r.strOperand)
		if err != nil {
			return "", err
		}
		s := "SUBSTRING(" + a[0] + " FROM " + a[1]
		if len(a) == 3 {
			s += " FOR " + a[2]
		}
		return s + ")", nil
	case "abs", "ceil", "floor":
		if err := arity(1, 1); err != nil {
			return "", err
		}
		a, err := args(r.expr)
		if err != nil {
			return "", err
		}
		return strings.ToUpper(f.Name) + "(" + a[0] + ")", nil
	case "round":
		if err := arity(1, 2); err != nil {
			return "", err
		}
		a, err := args(r.expr)
		if err != nil {
			return "", err
		}
		if len(a) == 1 {
			a = append(a, "0")
		}
		return "ROUND(" + a[0] + ", " + a[1] + ")", nil
	case "date_trunc":
		return r.dateTrunc(f)
	case "extract", "date_part":
		return r.extract(f)
	}
	return "", unsupportedf("function %s has no Flink translation", f.Name)
}

// truncUnits maps date_trunc units to FLOOR ... TO units. Week, century
// and millennium are left out: PostgreSQL's weeks start on Monday and its
// centuries in year 1, which Flink's FLOOR does not promise.
var truncUnits = map[string]string{
	"second": "SECOND", "minute": "MINUTE", "hour": "HOUR", "day": "DAY",
	"month": "MONTH", "quarter": "QUARTER", "year": "YEAR", "decade": "DECADE",
}

func (r *renderer) dateTrunc(f *sqlplan.Func) (string, error) {
	if len(f.Args) != 2 {
		return "", fmt.Errorf("flinksql: date_trunc with %d arguments", len(f.Args))
	}
	unit, ok := f.Args[0].(*sqlplan.Const)
	if !ok {
		return "", unsupportedf("date_trunc with a unit that is not a constant")
	}
	u, ok := truncUnits[strings.ToLower(unit.Text())]
	if !ok {
		return "", unsupportedf("date_trunc('%s', ...)", unit.Text())
	}
	switch f.Args[1].ResultType().Kind {
	case sqlplan.KindTimestamp, sqlplan.KindTimestamptz:
	default:
		return "", unsupportedf("date_trunc of %s", f.Args[1].ResultType())
	}
	x, err := r.expr(f.Args[1])
	if err != nil {
		return "", err
	}
	ft, err := flinkType(f.Type)
	if err != nil {
		return "", err
	}
	return "CAST(FLOOR(" + x + " TO " + u + ") AS " + ft + ")", nil
}

// extractFields maps extract/date_part fields to Flink's EXTRACT units
// that count the same way (dow is shifted: Flink counts Sunday as 1,
// PostgreSQL as 0). second and epoch are left out: PostgreSQL's carry
// fractions.
var extractFields = map[string]string{
	"year": "YEAR", "quarter": "QUARTER", "month": "MONTH", "day": "DAY",
	"hour": "HOUR", "minute": "MINUTE", "doy": "DOY", "dow": "DOW", "isodow": "ISODOW",
}

func (r *renderer) extract(f *sqlplan.Func) (string, error) {
	if len(f.Args) != 2 {
		return "", fmt.Errorf("flinksql: %s with %d arguments", f.Name, len(f.Args))
	}
	field, ok := f.Args[0].(*sqlplan.Const)
	if !ok {
		return "", unsupportedf("%s with a field that is not a constant", f.Name)
	}
	name := strings.ToLower(field.Text())
	unit, ok := extractFields[name]
	if !ok {
		return "", unsupportedf("%s('%s', ...)", f.Name, field.Text())
	}
	switch k := f.Args[1].ResultType().Kind; {
	case k == sqlplan.KindTimestamp || k == sqlplan.KindTimestamptz:
	case k == sqlplan.KindDate && unit != "HOUR" && unit != "MINUTE":
	case k == sqlplan.KindTime && (unit == "HOUR" || unit == "MINUTE"):
	default:
		return "", unsupportedf("%s('%s', ...) of %s", f.Name, name, f.Args[1].ResultType())
	}
	x, err := r.expr(f.Args[1])
	if err != nil {
		return "", err
	}
	ft, err := flinkType(f.Type)
	if err != nil {
		return "", err
	}
	s := "EXTRACT(" + unit + " FROM " + x + ")"
	if name == "dow" {
		s = "(" + s + " - 1)"
	}
	return "CAST(" + s + " AS " + ft + ")", nil
}

var (
	plainDecimalRE = regexp.MustCompile(`^-?[0-9]+\.[0-9]+$`)
	plainIntegerRE = regexp.MustCompile(`^-?[0-9]+$`)
	isoDateRE      = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
)

// constant renders a literal of the plan in Flink SQL, of the plan's type.
func constant(c *sqlplan.Const) (string, error) {
	t := c.Type
	if t.Kind == sqlplan.KindInterval && !t.Array && !c.Null {
		return intervalLiteral(c.Text())
	}
	ft, err := flinkType(t)
	if err != nil {
		return "", err
	}
	if c.Null {
		return "CAST(NULL AS " + ft + ")", nil
	}
	if t.Array {
		return "", unsupportedf("array constant %s", c.Value)
	}
	text := c.Text()
	quoted := strings.HasPrefix(c.Value, "'")
	switch t.Kind {
	case sqlplan.KindInteger:
		if _, err := strconv.ParseInt(text, 10, 32); err == nil {
			return text, nil
		}
		return "CAST(" + quoteString(text) + " AS INT)", nil
	case sqlplan.KindSmallint, sqlplan.KindBigint:
		if plainIntegerRE.MatchString(text) {
			return "CAST(" + text + " AS " + ft + ")", nil
		}
		return "CAST(" + quoteString(text) + " AS " + ft + ")", nil
	case sqlplan.KindNumeric:
		return decimalLiteral(text)
	case sqlplan.KindReal, sqlplan.KindDouble:
		if quoted {
			return "CAST(" + quoteString(text) + " AS " + ft + ")", nil
		}
		return "CAST(" + text + " AS " + ft + ")", nil
	case sqlplan.KindBoolean:
		switch strings.ToLower(text) {
		case "true", "t", "yes", "on", "1":
			return "TRUE", nil
		case "false", "f", "no", "off", "0":
			return "FALSE", nil
		}
		return "", fmt.Errorf("flinksql: boolean constant %s", c.Value)
	case sqlplan.KindDate:
		if isoDateRE.MatchString(text) {
			return "DATE " + quoteString(text), nil
		}
		return "CAST(" + quoteString(text) + " AS DATE)", nil
	case sqlplan.KindTime, sqlplan.KindTimestamp:
		return "CAST(" + quoteString(strings.Replace(text, "T", " ", 1)) + " AS " + ft + ")", nil
	case sqlplan.KindTimestamptz:
		utc, err := utcTimestamp(text)
		if err != nil {
			return "", err
		}
		// The session's time zone is UTC, so the text is read as UTC.
		return "CAST(" + quoteString(utc) + " AS " + ft + ")", nil
	case sqlplan.KindBytea:
		if hexText, ok := strings.CutPrefix(text, `\x`); ok {
			return "X" + quoteString(hexText), nil
		}
		return "", unsupportedf("bytea constant %s (only the hex form \\x... is translated)", c.Value)
	}
	if isStringKind(t) {
		return quoteString(text), nil
	}
	return "", unsupportedf("constant %s of type %s", c.Value, t)
}

// decimalLiteral renders a numeric constant as an exact DECIMAL.
func decimalLiteral(text string) (string, error) {
	if plainDecimalRE.MatchString(text) {
		return text, nil
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return "", unsupportedf("numeric constant %s", text)
	}
	scale := 0
	for ; scale <= maxDecimalPrecision; scale++ {
		if new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))).IsInt() {
			break
		}
	}
	if scale > maxDecimalPrecision {
		return "", unsupportedf("numeric constant %s needs more than %d digits", text, maxDecimalPrecision)
	}
	if scale > 0 {
		return r.FloatString(scale), nil
	}
	digits := strings.TrimPrefix(r.FloatString(0), "-")
	if len(digits) > maxDecimalPrecision {
		return "", unsupportedf("numeric constant %s needs more than %d digits", text, maxDecimalPrecision)
	}
	return fmt.Sprintf("CAST(%s AS DECIMAL(%d, 0))", r.FloatString(0), len(digits)), nil
}

// utcTimestamp reads a timestamptz constant and prints it at UTC.
func utcTimestamp(text string) (string, error) {
	s := strings.Replace(strings.TrimSpace(text), "T", " ", 1)
	for _, clock := range []string{" 15:04:05.999999999", " 15:04", ""} {
		for _, zone := range []string{"Z07:00", "Z07", "Z0700", ""} {
			if tm, err := time.Parse("2006-01-02"+clock+zone, s); err == nil {
				return tm.UTC().Format("2006-01-02 15:04:05.999999"), nil
			}
		}
	}
	return "", unsupportedf("timestamptz constant '%s'", text)
}

var intervalUnits = map[string]struct {
	months int64
	micros int64
}{
	"year": {months: 12}, "years": {months: 12}, "mon": {months: 1}, "mons": {months: 1},
	"month": {months: 1}, "months": {months: 1},
	"week": {micros: 7 * 86400e6}, "weeks": {micros: 7 * 86400e6},
	"day": {micros: 86400e6}, "days": {micros: 86400e6},
	"hour": {micros: 3600e6}, "hours": {micros: 3600e6},
	"min": {micros: 60e6}, "mins": {micros: 60e6}, "minute": {micros: 60e6}, "minutes": {micros: 60e6},
	"sec": {micros: 1e6}, "secs": {micros: 1e6}, "second": {micros: 1e6}, "seconds": {micros: 1e6},
}

// intervalLiteral renders a PostgreSQL interval constant ('1 day 02:00',
// '3 months') as a Flink interval literal. Years and months cannot mix with
// days and times in one Flink interval; such constants are refused.
func intervalLiteral(text string) (string, error) {
	fields := strings.Fields(strings.ToLower(text))
	var months, micros int64
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if strings.Contains(f, ":") {
			us, ok := clockMicros(f)
			if !ok {
				return "", unsupportedf("interval constant '%s'", text)
			}
			micros += us
			continue
		}
		n, err := strconv.ParseFloat(f, 64)
		if err != nil || i+1 >= len(fields) {
			return "", unsupportedf("interval constant '%s'", text)
		}
		i++
		u, ok := intervalUnits[fields[i]]
		if !ok {
			return "", unsupportedf("interval constant '%s'", text)
		}
		if u.months != 0 {
			if n != float64(int64(n)) {
				return "", unsupportedf("interval constant '%s'", text)
			}
			months += int64(n) * u.months
		} else {
			micros += int64(n * float64(u.micros))
		}
	}
	switch {
	case months != 0 && micros != 0:
		return "", unsupportedf("interval constant '%s' mixes months with days or times", text)
	case months != 0:
		sign, m := "", months
		if m < 0 {
			sign, m = "-", -m
		}
		return fmt.Sprintf("INTERVAL '%s%d-%d' YEAR(4) TO MONTH", sign, m/12, m%12), nil
	default:
		sign, us := "", micros
		if us < 0 {
			sign, us = "-", -us
		}
		if us%1000 != 0 {
			return "", unsupportedf("interval constant '%s' has microseconds; Flink's intervals hold milliseconds", text)
		}
		days := us / 86400e6
		us -= days * 86400e6
		h, m, s, ms := us/3600e6, us/60e6%60, us/1e6%60, us/1000%1000
		// Flink's planner takes a day precision of at most 3 and a second
		// precision of 3 (milliseconds); longer spans are a multiple of a day.
		clock := fmt.Sprintf("%02d:%02d:%02d.%03d", h, m, s, ms)
		if days <= 999 {
			return fmt.Sprintf("INTERVAL '%s%d %s' DAY(3) TO SECOND(3)", sign, days, clock), nil
		}
		return fmt.Sprintf("(INTERVAL '%s1' DAY * %d + INTERVAL '%s0 %s' DAY(3) TO SECOND(3))", sign, days, sign, clock), nil
	}
}

// clockMicros reads [-]hh:mm[:ss[.ffffff]].
func clockMicros(s string) (int64, bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, false
	}
	h, err1 := strconv.ParseInt(parts[0], 10, 64)
	m, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	us := (h*3600 + m*60) * 1e6
	if len(parts) == 3 {
		sec, err := strconv.ParseFloat(parts[2], 64)
		if err != nil {
			return 0, false
		}
		us += int64(sec*1e6 + 0.5)
	}
	if neg {
		us = -us
	}
	return us, true
}

// likeEscape is the escape character of the LIKE patterns cdcq writes.
// PostgreSQL escapes with a backslash by default, but Flink's code
// generator refuses ESCAPE '\' ("Invalid escape character"), so constant
// patterns are rewritten to escape with '!' instead.
const likeEscape = '!'

// like renders [NOT] LIKE and [NOT] ILIKE (as LIKE over LOWER) with a
// constant pattern.
func (r *renderer) like(e *sqlplan.Binary) (string, error) {
	c, ok := e.R.(*sqlplan.Const)
	if !ok || c.Null {
		return "", unsupportedf("%s with a pattern that is not a constant (%s)", e.Op, e.R)
	}
	pattern, err := likePattern(c.Text())
	if err != nil {
		return "", err
	}
	l, err := r.expr(e.L)
	if err != nil {
		return "", err
	}
	pat := quoteString(pattern)
	op := "LIKE"
	if e.Op == sqlplan.OpNotLike || e.Op == sqlplan.OpNotILike {
		op = "NOT LIKE"
	}
	if e.Op == sqlplan.OpILike || e.Op == sqlplan.OpNotILike {
		l, pat = "LOWER("+l+")", "LOWER("+pat+")"
	}
	return "(" + l + " " + op + " " + pat + " ESCAPE '" + string(likeEscape) + "')", nil
}

// likePattern turns a PostgreSQL LIKE pattern (backslash escapes) into one
// that escapes with likeEscape and means the same.
func likePattern(p string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '\\':
			if i+1 == len(p) {
				return "", unsupportedf("LIKE pattern %q ends with the escape character", p)
			}
			i++
			switch n := p[i]; n {
			case '%', '_', likeEscape:
				b.WriteByte(likeEscape)
				b.WriteByte(n)
			default:
				b.WriteByte(n)
			}
		case likeEscape:
			b.WriteByte(likeEscape)
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
