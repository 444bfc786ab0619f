package sqlplan

import (
	"reflect"
	"sort"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// volatile lists functions whose value changes over time or between calls
// (or depends on the session), with the reason they cannot be maintained.
var volatile = map[string]string{
	"now":                   "it returns the current time",
	"current_timestamp":     "it returns the current time",
	"current_date":          "it returns the current date",
	"current_time":          "it returns the current time",
	"localtime":             "it returns the current time",
	"localtimestamp":        "it returns the current time",
	"clock_timestamp":       "it returns the current time",
	"statement_timestamp":   "it returns the current time",
	"transaction_timestamp": "it returns the current time",
	"timeofday":             "it returns the current time",
	"age":                   "with one argument it measures from the current date",
	"random":                "it returns a different value on every call",
	"random_normal":         "it returns a different value on every call",
	"setseed":               "it changes the random generator",
	"gen_random_uuid":       "it returns a different value on every call",
	"uuid_generate_v1":      "it returns a different value on every call",
	"uuid_generate_v4":      "it returns a different value on every call",
	"uuidv4":                "it returns a different value on every call",
	"uuidv7":                "it returns a different value on every call",
	"nextval":               "it changes a sequence",
	"currval":               "it reads a sequence",
	"lastval":               "it reads a sequence",
	"setval":                "it changes a sequence",
	"txid_current":          "it depends on the transaction",
	"pg_current_xact_id":    "it depends on the transaction",
	"current_user":          "it depends on the session",
	"session_user":          "it depends on the session",
	"user":                  "it depends on the session",
	"current_role":          "it depends on the session",
	"current_catalog":       "it depends on the session",
	"current_schema":        "it depends on the session",
	"current_setting":       "it depends on the session",
	"pg_backend_pid":        "it depends on the session",
	"to_char":               "its result depends on session settings",
	"concat":                "its result depends on session settings; use ||",
	"concat_ws":             "its result depends on session settings; use ||",
	"format":                "its result depends on session settings; use ||",
}

// volatileReason completes "X is not allowed: ...".
func volatileReason(name string) string {
	why, ok := volatile[name]
	if !ok {
		why = "its value does not depend on the data alone"
	}
	return why + ", so the query's result could change without any change to the data; cdcq can only keep results that depend on the data alone"
}

// functions are the scalar functions Compile allows; see Func.
var functions = []string{
	"abs", "ceil", "ceiling", "char_length", "character_length", "coalesce", "date_part", "date_trunc",
	"extract", "floor", "greatest", "least", "length", "lower", "nullif", "round", "substr", "substring",
	"timezone", "upper",
}

var truncUnits = map[string]string{
	"microsecond": "microseconds", "microseconds": "microseconds",
	"millisecond": "milliseconds", "milliseconds": "milliseconds",
	"second": "second", "seconds": "second", "minute": "minute", "minutes": "minute",
	"hour": "hour", "hours": "hour", "day": "day", "days": "day", "week": "week", "weeks": "week",
	"month": "month", "months": "month", "quarter": "quarter", "year": "year", "years": "year",
	"decade": "decade", "decades": "decade", "century": "century", "centuries": "century",
	"millennium": "millennium", "millennia": "millennium",
}

var extractFields = map[string]bool{
	"century": true, "day": true, "decade": true, "dow": true, "doy": true, "epoch": true, "hour": true,
	"isodow": true, "isoyear": true, "julian": true, "microseconds": true, "millennium": true,
	"milliseconds": true, "minute": true, "month": true, "quarter": true, "second": true, "week": true,
	"year": true, "timezone": true, "timezone_hour": true, "timezone_minute": true,
}

// function compiles a call of a scalar function.
func (c *compiler) function(m *pg.FuncCall, cx ctx) (Expr, error) {
	loc := int(m.Location)
	name, ok := catalogName(m.Funcname)
	if !ok {
		return nil, c.errAt(loc, "function %s is not supported", funcName(m.Funcname))
	}
	if _, bad := volatile[name]; bad {
		return nil, c.errAt(loc, "%s() is not allowed: %s", name, volatileReason(name))
	}
	if m.AggDistinct || m.AggFilter != nil || len(m.AggOrder) > 0 || m.AggWithinGroup {
		return nil, c.errAt(loc, "%s is not an aggregate function", name)
	}
	if m.FuncVariadic {
		return nil, c.errAt(loc, "VARIADIC is not supported")
	}
	for _, a := range m.Args {
		if na := a.GetNamedArgExpr(); na != nil {
			return nil, c.errAt(int(na.Location), "named arguments are not supported")
		}
	}
	switch name {
	case "coalesce":
		return c.variadic("coalesce", "COALESCE", m.Args, cx, loc)
	case "greatest":
		return c.variadic("greatest", "GREATEST", m.Args, cx, loc)
	case "least":
		return c.variadic("least", "LEAST", m.Args, cx, loc)
	case "nullif":
		if len(m.Args) != 2 {
			return nil, c.errAt(loc, "nullif takes two arguments")
		}
		return c.nullif(m.Args[0], m.Args[1], cx, loc)
	}
	known := false
	for _, f := range functions {
		known = known || f == name
	}
	if !known {
		e := c.errAt(loc, "function %s is not supported; the supported functions are %s", name, strings.Join(functions, ", "))
		e.Suggestion = suggest(name, functions)
		return nil, e
	}
	var args []Expr
	for _, a := range m.Args {
		e, err := c.expr(a, cx)
		if err != nil {
			return nil, err
		}
		args = append(args, e)
	}
	types := make([]Type, len(args))
	for i, a := range args {
		types[i] = a.ResultType()
	}
	noFunc := func(extra string) error {
		var ts []string
		for _, t := range types {
			ts = append(ts, displayType(t))
		}
		e := c.errAt(loc, "function %s(%s) does not exist", name, strings.Join(ts, ", "))
		if extra != "" {
			e.Message += ": " + extra
		}
		return e
	}
	text := TypeOf(KindText)
	double := TypeOf(KindDouble)
	numeric := TypeOf(KindNumeric)
	// toText resolves a literal argument to text and checks for a string.
	toText := func(i int) error {
		if types[i].IsUnknown() {
			x, err := c.convert(args[i], text)
			if err != nil {
				return err
			}
			args[i], types[i] = x, text
		}
		if !types[i].IsString() {
			return noFunc("")
		}
		return nil
	}
	toInteger := func(i int) error {
		if types[i].IsUnknown() {
			x, err := c.convert(args[i], TypeOf(KindInteger))
			if err != nil {
				return err
			}
			args[i], types[i] = x, x.ResultType()
		}
		switch types[i].Kind {
		case KindInteger:
		case KindSmallint:
			args[i] = &Cast{X: args[i], Type: TypeOf(KindInteger), Implicit: true}
		default:
			return noFunc("")
		}
		return nil
	}
	// constText returns the text of a constant argument, lower-cased.
	constText := func(i int, what string) (string, error) {
		k, ok := args[i].(*Const)
		if !ok || k.Null || !(k.Type.IsUnknown() || k.Type.IsString()) {
			return "", c.errAt(c.locs[args[i]], "the %s of %s must be a string constant", what, name)
		}
		return strings.ToLower(k.Text()), nil
	}
	switch name {
	case "lower", "upper":
		if len(args) != 1 {
			return nil, noFunc("")
		}
		if err := toText(0); err != nil {
			return nil, err
		}
		return &Func{Name: name, Args: args, Type: text}, nil
	case "length", "char_length", "character_length":
		if len(args) != 1 {
			return nil, noFunc("")
		}
		if types[0].Kind != KindBytea || types[0].Array || name != "length" {
			if err := toText(0); err != nil {
				return nil, err
			}
		}
		return &Func{Name: "length", Args: args, Type: TypeOf(KindInteger)}, nil
	case "substring", "substr":
		if len(args) < 2 || len(args) > 3 {
			return nil, noFunc("")
		}
		if err := toText(0); err != nil {
			return nil, err
		}
		for i := 1; i < len(args); i++ {
			if err := toInteger(i); err != nil {
				return nil, err
			}
		}
		return &Func{Name: "substring", Args: args, Type: text}, nil
	case "abs":
		if len(args) != 1 || !types[0].IsNumeric() {
			return nil, noFunc("")
		}
		return &Func{Name: name, Args: args, Type: types[0].Base()}, nil
	case "round", "ceil", "ceiling", "floor":
		if name == "ceiling" {
			name = "ceil"
		}
		if len(args) == 2 && name == "round" {
			switch {
			case types[0].IsInteger():
				args[0] = &Cast{X: args[0], Type: numeric, Implicit: true}
			case types[0].Kind == KindNumeric:
			default:
				return nil, noFunc("round with a number of digits needs numeric; cast the first argument: round(x::numeric, n)")
			}
			if err := toInteger(1); err != nil {
				return nil, err
			}
			return &Func{Name: name, Args: args, Type: numeric}, nil
		}
		if len(args) != 1 || !types[0].IsNumeric() {
			return nil, noFunc("")
		}
		if types[0].Kind == KindNumeric {
			return &Func{Name: name, Args: args, Type: numeric}, nil
		}
		// PostgreSQL resolves round(integer) and round(real) to
		// round(double precision).
		if types[0].Kind != KindDouble {
			args[0] = &Cast{X: args[0], Type: double, Implicit: true}
		}
		return &Func{Name: name, Args: args, Type: double}, nil
	case "date_trunc":
		if len(args) != 2 {
			return nil, noFunc("the form with a time zone is not supported; use date_trunc(unit, x AT TIME ZONE zone)")
		}
		unit, err := constText(0, "unit")
		if err != nil {
			return nil, err
		}
		canon, ok := truncUnits[unit]
		if !ok {
			var units []string
			for u := range truncUnits {
				units = append(units, u)
			}
			sort.Strings(units)
			e := c.errAt(c.locs[args[0]], "unit %q not recognized by date_trunc", unit)
			e.Suggestion = suggest(unit, units)
			return nil, e
		}
		args[0] = c.note(&Const{Value: quoteLiteral(canon), Type: text}, c.locs[args[0]])
		switch {
		case types[1].IsUnknown():
			return nil, noFunc("write the type of the value, e.g. timestamp '2024-01-01'")
		case types[1].Array:
			return nil, noFunc("")
		case types[1].Kind == KindTimestamp || types[1].Kind == KindInterval:
			return &Func{Name: name, Args: args, Type: types[1].Base()}, nil
		case types[1].Kind == KindTimestamptz:
			return nil, noFunc("date_trunc on timestamptz depends on the session time zone; use date_trunc('" + unit + "', x AT TIME ZONE 'UTC')")
		case types[1].Kind == KindDate:
			return nil, noFunc("PostgreSQL would convert the date to timestamptz, which depends on the session time zone; cast it: date_trunc('" + unit + "', x::timestamp)")
		}
		return nil, noFunc("")
	case "extract", "date_part":
		if len(args) != 2 {
			return nil, noFunc("")
		}
		field, err := constText(0, "field")
		if err != nil {
			return nil, err
		}
		if !extractFields[field] {
			var fields []string
			for f := range extractFields {
				fields = append(fields, f)
			}
			sort.Strings(fields)
			e := c.errAt(c.locs[args[0]], "unit %q not recognized by %s", field, name)
			e.Suggestion = suggest(field, fields)
			return nil, e
		}
		args[0] = c.note(&Const{Value: quoteLiteral(field), Type: text}, c.locs[args[0]])
		result := numeric
		if name == "date_part" {
			result = double
		}
		switch k := types[1].Kind; {
		case types[1].Array || types[1].IsUnknown():
			return nil, noFunc("")
		case k == KindTimestamptz && field != "epoch", k == KindTimetz && field != "epoch":
			return nil, noFunc("extracting " + field + " from " + k.String() + " depends on the session time zone; use " + name + "(" + field + " from x AT TIME ZONE 'UTC')")
		case k == KindTimestamp, k == KindTimestamptz, k == KindDate, k == KindTime, k == KindTimetz, k == KindInterval:
			if name == "date_part" && k == KindDate {
				// date_part has no date variant; PostgreSQL converts to
				// timestamp.
				args[1] = &Cast{X: args[1], Type: TypeOf(KindTimestamp), Implicit: true}
			}
			return &Func{Name: name, Args: args, Type: result}, nil
		}
		return nil, noFunc("")
	case "timezone":
		if len(args) != 2 {
			return nil, noFunc("")
		}
		if _, err := constText(0, "time zone"); err != nil {
			return nil, err
		}
		args[0] = c.note(&Const{Value: args[0].(*Const).Value, Type: text}, c.locs[args[0]])
		switch types[1].Kind {
		case KindTimestamptz:
			if !types[1].Array {
				return &Func{Name: name, Args: args, Type: TypeOf(KindTimestamp)}, nil
			}
		case KindTimestamp:
			if !types[1].Array {
				return &Func{Name: name, Args: args, Type: TypeOf(KindTimestamptz)}, nil
			}
		case KindDate:
			return nil, noFunc("cast the date to timestamp first: x::timestamp AT TIME ZONE zone")
		}
		return nil, noFunc("")
	}
	return nil, noFunc("")
}

// aggregate compiles a call of an aggregate function and returns a
// reference to it.
func (c *compiler) aggregate(m *pg.FuncCall, name string, cx ctx) (Expr, error) {
	loc := int(m.Location)
	if cx.inAgg {
		return nil, c.errAt(loc, "aggregate function calls cannot be nested")
	}
	if !cx.grouped {
		return nil, c.errAt(loc, "aggregate functions are not allowed in %s", c.clause)
	}
	fn, ok := aggregateNames[name]
	if !ok {
		return nil, c.errAt(loc, "aggregate %s is not supported: cdcq maintains count, sum, avg, min and max", name)
	}
	switch {
	case m.AggFilter != nil:
		return nil, c.errAt(c.keywordAfter(loc, -1, pg.Token_FILTER), "FILTER is not supported: put the condition inside the aggregate, e.g. count(CASE WHEN cond THEN 1 END) or sum(CASE WHEN cond THEN x END)")
	case len(m.AggOrder) > 0:
		return nil, c.errAt(nodeLoc(m.AggOrder[0]), "ORDER BY inside an aggregate is not supported")
	case m.AggWithinGroup:
		return nil, c.errAt(loc, "WITHIN GROUP is not supported")
	case m.FuncVariadic:
		return nil, c.errAt(loc, "VARIADIC is not supported")
	}
	if m.AggStar {
		if name != "count" {
			return nil, c.errAt(loc, "%s(*) is not allowed; only count(*)", name)
		}
		return c.addAggregate(Aggregate{Func: CountStar, Type: TypeOf(KindBigint)}, loc), nil
	}
	if len(m.Args) != 1 {
		return nil, c.errAt(loc, "%s takes one argument", name)
	}
	if na := m.Args[0].GetNamedArgExpr(); na != nil {
		return nil, c.errAt(int(na.Location), "named arguments are not supported")
	}
	argCx := cx
	argCx.grouped, argCx.inAgg = false, true
	arg, err := c.expr(m.Args[0], argCx)
	if err != nil {
		return nil, err
	}
	arg = c.finish(arg)
	t := arg.ResultType()
	if m.AggDistinct {
		switch fn {
		case Count:
			fn = CountDistinct
		case Min, Max: // the same result
		default:
			return nil, c.errAt(loc, "%s(DISTINCT ...) is not supported; only count(DISTINCT ...)", name)
		}
	}
	noAgg := func() error {
		return c.errAt(loc, "function %s(%s) does not exist", name, t)
	}
	var result Type
	switch fn {
	case Count:
		result = TypeOf(KindBigint)
	case CountDistinct:
		if !hasEquality(t) {
			return nil, c.errAt(loc, "count(DISTINCT ...) needs a type with equality; %s has none", t)
		}
		result = TypeOf(KindBigint)
	case Sum, Avg:
		if t.Array {
			return nil, noAgg()
		}
		switch t.Kind {
		case KindSmallint, KindInteger:
			result = TypeOf(KindBigint)
			if fn == Avg {
				result = TypeOf(KindNumeric)
			}
		case KindBigint, KindNumeric:
			result = TypeOf(KindNumeric)
		case KindReal:
			result = TypeOf(KindReal)
			if fn == Avg {
				result = TypeOf(KindDouble)
			}
		case KindDouble:
			result = TypeOf(KindDouble)
		case KindInterval:
			result = TypeOf(KindInterval)
		case KindOther:
			if t.Name != "money" || fn != Sum {
				return nil, noAgg()
			}
			result = t
		default:
			return nil, noAgg()
		}
	case Min, Max:
		switch {
		case t.Array:
			result = t.Base()
		case t.IsNumeric(), t.Kind == KindDate, t.Kind == KindTimestamp, t.Kind == KindTimestamptz,
			t.Kind == KindTime, t.Kind == KindTimetz, t.Kind == KindInterval, t.Kind == KindEnum:
			result = t.Base()
		case t.Kind == KindText, t.Kind == KindVarchar:
			result = TypeOf(KindText)
		case t.Kind == KindChar:
			result = CharType(NoPrecision)
		case t.Kind == KindOther && (t.Name == "money" || t.Name == "inet" || t.Name == "oid"):
			result = t
		default:
			return nil, noAgg()
		}
	}
	return c.addAggregate(Aggregate{Func: fn, Arg: arg, Type: result}, loc), nil
}

// addAggregate returns a reference to agg, adding it unless an identical
// call is already there.
func (c *compiler) addAggregate(agg Aggregate, loc int) Expr {
	for i, a := range c.aggs {
		if reflect.DeepEqual(a, agg) {
			return c.note(&AggRef{Index: i, Type: a.Type}, loc)
		}
	}
	c.aggs = append(c.aggs, agg)
	return c.note(&AggRef{Index: len(c.aggs) - 1, Type: agg.Type}, loc)
}
