package sqlplan

// Expr is a typed scalar expression. The node types form a closed set:
// *ColumnRef, *Const, *Binary, *Unary, *IsNull, *In, *Between, *Case,
// *Cast, *Func, *AggRef and *GroupRef. Their semantics are PostgreSQL's,
// including three-valued logic: an operator or function with a NULL
// operand gives NULL unless its documentation below says otherwise.
//
// Compile leaves no type decision to the engines: where PostgreSQL would
// convert an operand implicitly (integer + numeric, date < timestamp, a
// string literal compared with an enum), the plan holds a Cast with
// Implicit set or a Const already of the target type, so the operands of
// Binary, In, Between and Case, and the arguments of coalesce, nullif,
// greatest and least, have one type family (strings may mix text, varchar
// and char; integers are cast to the widest).
type Expr interface {
	// ResultType is the type of the expression's value.
	ResultType() Type
	// String renders the expression as readable SQL-like text, with
	// sources by index (s0.total; Plan.String names them by alias) and
	// AggRef/GroupRef as agg[i]/group[i].
	String() string
	isExpr()
}

// ColumnRef reads a column of a source row.
type ColumnRef struct {
	Source int    // index into Plan.Sources
	Column string // database column name
	Type   Type
}

// Const is a constant.
type Const struct {
	// Value is the constant as SQL literal text, already converted to Type:
	// numbers unquoted ("42", "-7", "3.14", "1e3"), booleans TRUE or FALSE,
	// NULL, and values of every other type as a single-quoted string in the
	// type's input syntax ("'paid'", "'2024-01-01'", "'1 day'"). Text
	// returns the unquoted form.
	Value string
	Type  Type
	Null  bool
}

// Text returns the constant without SQL quoting: 'it”s' gives it's, 42
// gives 42. It is "" for NULL.
func (c *Const) Text() string {
	if c.Null {
		return ""
	}
	v := c.Value
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return unquoteLiteral(v)
	}
	return v
}

// Op is an operator of Binary or Unary.
type Op string

// Binary operators, with the operand types Compile accepts.
const (
	OpAdd Op = "+" // numbers; date + integer (date); date/timestamp + interval (timestamp); interval + interval; time + interval; date + time (timestamp)
	OpSub Op = "-" // numbers; date - integer (date); date - date (integer days); timestamp - timestamp and timestamptz - timestamptz (interval); date/timestamp - interval (timestamp); interval - interval; time - interval
	OpMul Op = "*" // numbers; interval * number
	OpDiv Op = "/" // numbers (integer / integer truncates toward zero, as in PostgreSQL); interval / number
	OpMod Op = "%" // integers and numeric

	OpEq Op = "="  // comparable operands (see Expr); boolean result
	OpNe Op = "<>" // likewise
	OpLt Op = "<"
	OpLe Op = "<="
	OpGt Op = ">"
	OpGe Op = ">="

	OpAnd Op = "AND" // booleans; three-valued: false AND NULL is false
	OpOr  Op = "OR"  // booleans; three-valued: true OR NULL is true

	OpConcat   Op = "||"        // strings; text result
	OpLike     Op = "LIKE"      // strings; R is the pattern (% and _, backslash escapes)
	OpNotLike  Op = "NOT LIKE"  // likewise
	OpILike    Op = "ILIKE"     // case-insensitive LIKE
	OpNotILike Op = "NOT ILIKE" // likewise

	// Unary operators.
	OpNot Op = "NOT" // boolean
	OpNeg Op = "-"   // numbers and interval
)

// Binary applies an infix operator.
type Binary struct {
	Op   Op
	L, R Expr
	Type Type
}

// Unary applies OpNot or OpNeg.
type Unary struct {
	Op   Op
	X    Expr
	Type Type
}

// IsNull is X IS NULL, or X IS NOT NULL when Not is set; never NULL itself.
type IsNull struct {
	X   Expr
	Not bool
}

// In is X IN (List...), or X NOT IN (List...) when Not is set, with SQL's
// NULL rules: no match and a NULL in List gives NULL.
type In struct {
	X    Expr
	List []Expr
	Not  bool
}

// Between is X BETWEEN Lo AND Hi (inclusive), or NOT BETWEEN when Not is
// set.
type Between struct {
	X, Lo, Hi Expr
	Not       bool
}

// Case is a CASE expression. With an Operand, the Cond of each When is a
// value compared with Operand by =; without, it is a boolean condition.
// The Result of the first matching When is the value, else Else (NULL when
// Else is nil).
type Case struct {
	Operand Expr // nil for a searched CASE
	Whens   []When
	Else    Expr // nil means ELSE NULL
	Type    Type
}

// When is one WHEN ... THEN ... of a Case.
type When struct {
	Cond, Result Expr
}

// Cast converts X to Type. Implicit marks a conversion PostgreSQL applies
// by itself (integer to numeric in integer + numeric); explicit ones come
// from CAST(x AS t) and x::t.
type Cast struct {
	X        Expr
	Type     Type
	Implicit bool
}

// Func calls one of the functions Compile allows, all immutable. Names and
// signatures (PostgreSQL's):
//
//	coalesce(a, b, ...)        first non-NULL argument
//	nullif(a, b)               NULL when a = b, else a
//	greatest(a, ...), least(a, ...)   ignoring NULLs
//	lower(s), upper(s)         text
//	length(s)                  integer, in characters (char ignores trailing blanks); bytea: bytes
//	substring(s, from [, n])   text; from is 1-based
//	abs(x)                     the type of x
//	round(x)                   numeric for numeric, else double precision
//	round(x, n)                numeric; x is numeric (integers are cast)
//	ceil(x), floor(x)          numeric for numeric, else double precision
//	date_trunc(unit, x)        x timestamp or interval; unit is a constant, canonical: microseconds, milliseconds, second, minute, hour, day, week, month, quarter, year, decade, century, millennium
//	extract(field, x)          numeric; x timestamp, date, time or interval (timestamptz only for epoch); field is a constant, lower case
//	date_part(field, x)        double precision; like extract
//	timezone(zone, x)          x AT TIME ZONE zone: timestamptz to timestamp in zone, or timestamp in zone to timestamptz; zone is a constant
//
// Constant arguments (units, fields, zones) are *Const.
type Func struct {
	Name string
	Args []Expr
	Type Type
}

// AggRef is the value of Plan.Aggregates[Index] for the current group.
type AggRef struct {
	Index int
	Type  Type
}

// GroupRef is the value of Plan.GroupBy[Index] for the current group.
type GroupRef struct {
	Index int
	Type  Type
}

var boolType = TypeOf(KindBoolean)

func (e *ColumnRef) ResultType() Type { return e.Type }
func (e *Const) ResultType() Type     { return e.Type }
func (e *Binary) ResultType() Type    { return e.Type }
func (e *Unary) ResultType() Type     { return e.Type }
func (e *IsNull) ResultType() Type    { return boolType }
func (e *In) ResultType() Type        { return boolType }
func (e *Between) ResultType() Type   { return boolType }
func (e *Case) ResultType() Type      { return e.Type }
func (e *Cast) ResultType() Type      { return e.Type }
func (e *Func) ResultType() Type      { return e.Type }
func (e *AggRef) ResultType() Type    { return e.Type }
func (e *GroupRef) ResultType() Type  { return e.Type }

func (*ColumnRef) isExpr() {}
func (*Const) isExpr()     {}
func (*Binary) isExpr()    {}
func (*Unary) isExpr()     {}
func (*IsNull) isExpr()    {}
func (*In) isExpr()        {}
func (*Between) isExpr()   {}
func (*Case) isExpr()      {}
func (*Cast) isExpr()      {}
func (*Func) isExpr()      {}
func (*AggRef) isExpr()    {}
func (*GroupRef) isExpr()  {}

// Children returns the direct subexpressions of e, in evaluation order.
func Children(e Expr) []Expr {
	switch e := e.(type) {
	case *Binary:
		return []Expr{e.L, e.R}
	case *Unary:
		return []Expr{e.X}
	case *IsNull:
		return []Expr{e.X}
	case *In:
		return append([]Expr{e.X}, e.List...)
	case *Between:
		return []Expr{e.X, e.Lo, e.Hi}
	case *Case:
		var out []Expr
		if e.Operand != nil {
			out = append(out, e.Operand)
		}
		for _, w := range e.Whens {
			out = append(out, w.Cond, w.Result)
		}
		if e.Else != nil {
			out = append(out, e.Else)
		}
		return out
	case *Cast:
		return []Expr{e.X}
	case *Func:
		return e.Args
	}
	return nil
}

// Walk calls fn for e and, while fn returns true, for its subexpressions,
// depth first.
func Walk(e Expr, fn func(Expr) bool) {
	if e == nil || !fn(e) {
		return
	}
	for _, c := range Children(e) {
		Walk(c, fn)
	}
}

// Conjuncts splits e at its top-level ANDs: a AND (b AND c) gives a, b, c.
// A nil e gives none.
func Conjuncts(e Expr) []Expr {
	if e == nil {
		return nil
	}
	if b, ok := e.(*Binary); ok && b.Op == OpAnd {
		return append(Conjuncts(b.L), Conjuncts(b.R)...)
	}
	return []Expr{e}
}

// SourcesOf returns the indexes of the sources a row expression reads, in
// increasing order.
func SourcesOf(e Expr) []int {
	seen := map[int]bool{}
	Walk(e, func(x Expr) bool {
		if c, ok := x.(*ColumnRef); ok {
			seen[c.Source] = true
		}
		return true
	})
	var out []int
	for i := 0; len(out) < len(seen); i++ {
		if seen[i] {
			out = append(out, i)
		}
	}
	return out
}

// and combines conjuncts left-deep; nil for none.
func and(conds []Expr) Expr {
	var out Expr
	for _, c := range conds {
		if out == nil {
			out = c
		} else {
			out = &Binary{Op: OpAnd, L: out, R: c, Type: boolType}
		}
	}
	return out
}
