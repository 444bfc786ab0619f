package sqlplan

import (
	"math/big"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/cdcq/cdcq/internal/prismaschema"
)

// ctx says where an expression stands.
type ctx struct {
	// grouped is set for group expressions (SELECT, HAVING, ORDER BY):
	// column references must be grouping keys or inside aggregates.
	grouped bool
	// inAgg is set inside an aggregate's argument.
	inAgg bool
	// visible limits the sources a JOIN condition may use; nil allows all.
	visible []bool
}

// expr translates a parse-tree expression.
func (c *compiler) expr(n *pg.Node, cx ctx) (Expr, error) {
	c.depth++
	defer func() { c.depth-- }()
	loc := nodeLoc(n)
	if c.depth > maxDepth {
		return nil, c.errAt(loc, "the expression is nested too deeply")
	}
	if cx.grouped && !c.containsAggregate(n) {
		// A whole subexpression that equals a grouping key is that key; one
		// that reads no column is a constant. Otherwise look inside.
		row := cx
		row.grouped = false
		e, err := c.expr(n, row)
		if err != nil {
			return nil, err
		}
		if i := c.groupIndex(c.finish(e)); i >= 0 {
			return c.note(&GroupRef{Index: i, Type: c.groupBy[i].ResultType()}, loc), nil
		}
		if !readsColumns(e) {
			return e, nil
		}
	}
	e, err := c.translate(n, cx, loc)
	if err != nil {
		return nil, err
	}
	return c.note(e, loc), nil
}

func readsColumns(e Expr) bool {
	found := false
	Walk(e, func(x Expr) bool {
		if _, ok := x.(*ColumnRef); ok {
			found = true
		}
		return !found
	})
	return found
}

func (c *compiler) translate(n *pg.Node, cx ctx, loc int) (Expr, error) {
	switch m := nodeMessage(n).(type) {
	case *pg.ColumnRef:
		return c.columnExpr(m, cx)
	case *pg.A_Const:
		return c.constant(m)
	case *pg.TypeCast:
		return c.typeCast(m, cx)
	case *pg.A_Expr:
		return c.aExpr(m, cx)
	case *pg.BoolExpr:
		return c.boolExpr(m, cx)
	case *pg.NullTest:
		if m.Argisrow {
			return nil, c.errAt(loc, "row tests are not supported")
		}
		x, err := c.expr(m.Arg, cx)
		if err != nil {
			return nil, err
		}
		return &IsNull{X: c.finish(x), Not: m.Nulltesttype == pg.NullTestType_IS_NOT_NULL}, nil
	case *pg.BooleanTest:
		return c.booleanTest(m, cx)
	case *pg.CaseExpr:
		return c.caseExpr(m, cx)
	case *pg.CoalesceExpr:
		return c.variadic("coalesce", "COALESCE", m.Args, cx, loc)
	case *pg.MinMaxExpr:
		if m.Op == pg.MinMaxOp_IS_GREATEST {
			return c.variadic("greatest", "GREATEST", m.Args, cx, loc)
		}
		return c.variadic("least", "LEAST", m.Args, cx, loc)
	case *pg.FuncCall:
		name, _ := catalogName(m.Funcname)
		if isAggregateCall(m) {
			return c.aggregate(m, name, cx)
		}
		return c.function(m, cx)
	case *pg.SQLValueFunction:
		word := strings.TrimSuffix(strings.TrimPrefix(m.Op.String(), "SVFOP_"), "_N")
		return nil, c.errAt(loc, "%s is not allowed: %s", word, volatileReason(strings.ToLower(word)))
	case *pg.SubLink:
		return nil, c.errAt(loc, "subqueries are not supported")
	case *pg.ParamRef:
		return nil, c.errAt(loc, "query parameters ($%d) are not supported: write the value", m.Number)
	case *pg.A_ArrayExpr:
		return nil, c.errAt(loc, "ARRAY[...] is not supported")
	case *pg.RowExpr:
		return nil, c.errAt(loc, "row constructors are not supported")
	case *pg.A_Indirection:
		return nil, c.errAt(loc, "subscripts and field selection are not supported")
	case *pg.CollateClause:
		return nil, c.errAt(loc, "COLLATE is not supported")
	case nil:
		return nil, c.errAt(loc, "missing expression")
	default:
		return nil, c.errAt(loc, "this expression (%s) is not supported", m.ProtoReflect().Descriptor().Name())
	}
}

// columnRef builds a reference to a column of source si and marks it used.
func (c *compiler) columnRef(si int, col *prismaschema.Column, loc int) (*ColumnRef, error) {
	t, err := ColumnType(c.schema, col)
	if err != nil {
		return nil, c.errAt(loc, "column %s.%s cannot be used: %v", c.sources[si].alias, col.Name, err)
	}
	c.sources[si].used[col.Name] = true
	ref := &ColumnRef{Source: si, Column: col.Name, Type: t}
	c.note(ref, loc)
	return ref, nil
}

func (c *compiler) columnExpr(m *pg.ColumnRef, cx ctx) (Expr, error) {
	var names []string
	for _, f := range m.Fields {
		if f.GetAStar() != nil {
			return nil, c.errAt(int(m.Location), "* is not allowed here")
		}
		names = append(names, f.GetString_().GetSval())
	}
	parts := c.identParts(int(m.Location), names)
	si, col, err := c.resolveColumn(parts, cx.visible)
	if err != nil {
		return nil, err
	}
	ref, err := c.columnRef(si, col, parts[len(parts)-1].loc)
	if err != nil {
		return nil, err
	}
	if !cx.grouped {
		return ref, nil
	}
	// Not a grouping key (expr checked). PostgreSQL still allows it when
	// the primary key of its table is grouped: then it has one value per
	// group, and grouping by it too changes nothing.
	if c.keyGrouped(si) {
		c.groupBy = append(c.groupBy, ref)
		return &GroupRef{Index: len(c.groupBy) - 1, Type: ref.Type}, nil
	}
	return nil, c.errAt(int(m.Location), "column %s must appear in the GROUP BY clause or be used in an aggregate function", strqq(c.refName(ref)))
}

// keyGrouped reports whether every primary key column of source si is a
// grouping key.
func (c *compiler) keyGrouped(si int) bool {
	for _, k := range c.sources[si].table.PrimaryKey {
		found := false
		for _, g := range c.groupBy {
			if r, ok := g.(*ColumnRef); ok && r.Source == si && r.Column == k {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// constant translates a literal.
func (c *compiler) constant(k *pg.A_Const) (Expr, error) {
	switch v := k.Val.(type) {
	case nil:
		return &Const{Value: "NULL", Null: true, Type: TypeOf(KindUnknown)}, nil
	case *pg.A_Const_Ival:
		return &Const{Value: strconv.Itoa(int(v.Ival.GetIval())), Type: TypeOf(KindInteger)}, nil
	case *pg.A_Const_Fval:
		return numberConst(v.Fval.GetFval()), nil
	case *pg.A_Const_Boolval:
		if v.Boolval.GetBoolval() {
			return &Const{Value: "TRUE", Type: boolType}, nil
		}
		return &Const{Value: "FALSE", Type: boolType}, nil
	case *pg.A_Const_Sval:
		return &Const{Value: quoteLiteral(v.Sval.GetSval()), Type: TypeOf(KindUnknown)}, nil
	case *pg.A_Const_Bsval:
		return nil, c.errAt(int(k.Location), "bit-string literals are not supported")
	}
	if k.Isnull {
		return &Const{Value: "NULL", Null: true, Type: TypeOf(KindUnknown)}, nil
	}
	return nil, c.errAt(int(k.Location), "unsupported literal")
}

// numberConst types a numeric literal the parser did not fit in an
// integer: bigint when it is an integer that fits, numeric otherwise.
func numberConst(s string) *Const {
	digits := strings.ReplaceAll(s, "_", "")
	neg := strings.HasPrefix(digits, "-")
	body := strings.TrimPrefix(digits, "-")
	base := 10
	if len(body) > 2 && body[0] == '0' {
		switch body[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 10 {
			body = body[2:]
		}
	}
	if n, ok := new(big.Int).SetString(body, base); ok {
		if neg {
			n.Neg(n)
		}
		switch {
		case fitsInteger(n, KindInteger):
			return &Const{Value: n.String(), Type: TypeOf(KindInteger)}
		case n.IsInt64():
			return &Const{Value: n.String(), Type: TypeOf(KindBigint)}
		}
		return &Const{Value: n.String(), Type: TypeOf(KindNumeric)}
	}
	return &Const{Value: digits, Type: TypeOf(KindNumeric)}
}

// typeName resolves a type named in a cast.
func (c *compiler) typeName(tn *pg.TypeName) (Type, error) {
	loc := int(tn.Location)
	if tn.Setof || tn.PctType {
		return Type{}, c.errAt(loc, "this type name is not supported")
	}
	var mods []int
	for _, m := range tn.Typmods {
		k := m.GetAConst()
		if k == nil || k.GetIval() == nil {
			return Type{}, c.errAt(nodeLoc(m), "type modifiers must be integers")
		}
		mods = append(mods, int(k.GetIval().GetIval()))
	}
	var t Type
	name, ok := catalogName(tn.Names)
	found := false
	if ok {
		if name == "interval" {
			mods = nil // interval fields and precision do not change the kind
		}
		t, found = typeByName(name, mods)
	}
	if !found {
		var names []string
		for _, n := range tn.Names {
			names = append(names, n.GetString_().GetSval())
		}
		parts := c.identParts(loc, names)
		if len(parts) > 2 {
			return Type{}, c.errAt(loc, "unknown type %s", joinIdents(parts))
		}
		var candidates []*prismaschema.Enum
		for _, e := range c.schema.Enums {
			sch := e.Schema
			if sch == "" {
				sch = "public"
			}
			if len(parts) == 1 || schemaMatches(parts[0], sch) {
				candidates = append(candidates, e)
			}
		}
		enums := matchStep(candidates, parts[len(parts)-1],
			func(e *prismaschema.Enum) string { return e.Name },
			func(e *prismaschema.Enum) string { return e.EnumName })
		if len(enums) != 1 {
			e := c.errAt(parts[len(parts)-1].loc, "unknown type %s", joinIdents(parts))
			known := []string{"smallint", "integer", "bigint", "numeric", "real", "double precision", "boolean",
				"text", "varchar", "char", "uuid", "date", "timestamp", "timestamptz", "time", "timetz",
				"interval", "json", "jsonb", "bytea"}
			for _, en := range c.schema.Enums {
				known = append(known, en.Name)
			}
			e.Suggestion = suggest(parts[len(parts)-1].text, known)
			return Type{}, e
		}
		t = EnumType(enums[0].Schema, enums[0].Name)
	}
	if len(tn.ArrayBounds) > 0 {
		t = ArrayType(t)
	}
	return t, nil
}

func (c *compiler) typeCast(m *pg.TypeCast, cx ctx) (Expr, error) {
	t, err := c.typeName(m.TypeName)
	if err != nil {
		return nil, err
	}
	x, err := c.expr(m.Arg, cx)
	if err != nil {
		return nil, err
	}
	from := x.ResultType()
	if k, ok := x.(*Const); ok && (from.IsUnknown() || k.Null) {
		return c.retype(k, t)
	}
	if from == t {
		return x, nil
	}
	if reason := castReason(from, t); reason != "" {
		return nil, c.errAt(c.castLoc(m), "cannot cast %s to %s: %s", from, t, reason)
	}
	return &Cast{X: x, Type: t}, nil
}

func (c *compiler) castLoc(m *pg.TypeCast) int {
	if m.Location >= 0 {
		return int(m.Location)
	}
	return int(m.TypeName.Location)
}

// binaryOps maps operator names to the plan's operators.
var binaryOps = map[string]Op{
	"+": OpAdd, "-": OpSub, "*": OpMul, "/": OpDiv, "%": OpMod,
	"=": OpEq, "<>": OpNe, "<": OpLt, "<=": OpLe, ">": OpGt, ">=": OpGe,
	"||": OpConcat, "~~": OpLike, "!~~": OpNotLike, "~~*": OpILike, "!~~*": OpNotILike,
}

func (c *compiler) aExpr(m *pg.A_Expr, cx ctx) (Expr, error) {
	loc := int(m.Location)
	opName, ok := catalogName(m.Name)
	if !ok {
		return nil, c.errAt(loc, "operator %s is not supported", funcName(m.Name))
	}
	switch m.Kind {
	case pg.A_Expr_Kind_AEXPR_OP, pg.A_Expr_Kind_AEXPR_LIKE, pg.A_Expr_Kind_AEXPR_ILIKE:
		if m.Lexpr == nil {
			return c.prefix(opName, m.Rexpr, cx, loc)
		}
		op, ok := binaryOps[opName]
		if !ok {
			return nil, c.errAt(loc, "operator %s is not supported", opName)
		}
		l, err := c.expr(m.Lexpr, cx)
		if err != nil {
			return nil, err
		}
		if fc := m.Rexpr.GetFuncCall(); fc != nil && funcName(fc.Funcname) == "pg_catalog.like_escape" {
			escLoc := c.keywordAfter(loc, -1, pg.Token_ESCAPE)
			if escLoc < 0 {
				escLoc = int(fc.Location)
			}
			return nil, c.errAt(escLoc, "LIKE ... ESCAPE is not supported")
		}
		r, err := c.expr(m.Rexpr, cx)
		if err != nil {
			return nil, err
		}
		return c.binary(op, l, r, loc)
	case pg.A_Expr_Kind_AEXPR_OP_ANY, pg.A_Expr_Kind_AEXPR_OP_ALL:
		return nil, c.errAt(loc, "%s ANY/ALL (array) is not supported: use IN (...)", opName)
	case pg.A_Expr_Kind_AEXPR_DISTINCT, pg.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		return c.distinct(m, cx)
	case pg.A_Expr_Kind_AEXPR_NULLIF:
		return c.nullif(m.Lexpr, m.Rexpr, cx, loc)
	case pg.A_Expr_Kind_AEXPR_IN:
		return c.in(m, opName == "<>", cx)
	case pg.A_Expr_Kind_AEXPR_BETWEEN, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN:
		return c.between(m, m.Kind == pg.A_Expr_Kind_AEXPR_NOT_BETWEEN, cx)
	case pg.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		return nil, c.errAt(loc, "BETWEEN SYMMETRIC is not supported")
	case pg.A_Expr_Kind_AEXPR_SIMILAR:
		return nil, c.errAt(loc, "SIMILAR TO is not supported: use LIKE")
	}
	return nil, c.errAt(loc, "this operator is not supported")
}

func (c *compiler) prefix(op string, arg *pg.Node, cx ctx, loc int) (Expr, error) {
	x, err := c.expr(arg, cx)
	if err != nil {
		return nil, err
	}
	t := x.ResultType()
	switch op {
	case "-":
		if k, ok := x.(*Const); ok && t.IsNumeric() {
			v := strings.TrimPrefix(k.Value, "-")
			if v == k.Value {
				v = "-" + v
			}
			return &Const{Value: v, Type: t}, nil
		}
		if !t.IsNumeric() && t.Kind != KindInterval {
			return nil, c.errAt(loc, "operator does not exist: - %s", t)
		}
		return &Unary{Op: OpNeg, X: x, Type: t.Base()}, nil
	case "+":
		if !t.IsNumeric() && t.Kind != KindInterval {
			return nil, c.errAt(loc, "operator does not exist: + %s", t)
		}
		return x, nil
	}
	return nil, c.errAt(loc, "prefix operator %s is not supported", op)
}

// binary types an infix operator the way PostgreSQL resolves it.
func (c *compiler) binary(op Op, l, r Expr, loc int) (Expr, error) {
	lt, rt := l.ResultType(), r.ResultType()
	noOp := func(extra string) error {
		e := c.errAt(loc, "operator does not exist: %s %s %s", displayType(lt), op, displayType(rt))
		if extra != "" {
			e.Message += ": " + extra
		}
		return e
	}
	switch op {
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
		t, reason := commonType(lt, rt)
		if reason != "" {
			if reason == tzReason {
				return nil, noOp(reason)
			}
			return nil, noOp("")
		}
		if !hasEquality(t) || op != OpEq && op != OpNe && !hasOrdering(t) {
			return nil, noOp("")
		}
		var err error
		if l, err = c.convert(l, t); err != nil {
			return nil, err
		}
		if r, err = c.convert(r, t); err != nil {
			return nil, err
		}
		return &Binary{Op: op, L: l, R: r, Type: boolType}, nil
	case OpConcat, OpLike, OpNotLike, OpILike, OpNotILike:
		if !(lt.IsString() || lt.IsUnknown()) || !(rt.IsString() || rt.IsUnknown()) {
			return nil, noOp("")
		}
		text := TypeOf(KindText)
		var err error
		if lt.IsUnknown() {
			if l, err = c.convert(l, text); err != nil {
				return nil, err
			}
		}
		if rt.IsUnknown() {
			if r, err = c.convert(r, text); err != nil {
				return nil, err
			}
		}
		t := boolType
		if op == OpConcat {
			t = text
		}
		return &Binary{Op: op, L: l, R: r, Type: t}, nil
	}
	// Arithmetic. A string literal takes the type of the other operand, or
	// interval next to a timestamp.
	var err error
	switch {
	case lt.IsUnknown() && rt.IsUnknown():
		return nil, noOp("write the type of a literal, e.g. 2::integer")
	case lt.IsUnknown():
		if l, err = c.convert(l, arithPartner(rt)); err != nil {
			return nil, err
		}
	case rt.IsUnknown():
		if r, err = c.convert(r, arithPartner(lt)); err != nil {
			return nil, err
		}
	}
	lt, rt = l.ResultType(), r.ResultType()
	if lt.IsNumeric() && rt.IsNumeric() {
		t := promote(lt, rt)
		if op == OpMod && t.IsFloat() {
			return nil, noOp("cast the operands to numeric")
		}
		if l, err = c.convert(l, t); err != nil {
			return nil, err
		}
		if r, err = c.convert(r, t); err != nil {
			return nil, err
		}
		return &Binary{Op: op, L: l, R: r, Type: t}, nil
	}
	t, castL, castR, reason := temporalArith(op, lt, rt)
	if reason != "" || t.IsUnknown() {
		return nil, noOp(reason)
	}
	if castL != (Type{}) {
		l = c.note(&Cast{X: l, Type: castL, Implicit: true}, c.locs[l])
	}
	if castR != (Type{}) {
		r = c.note(&Cast{X: r, Type: castR, Implicit: true}, c.locs[r])
	}
	return &Binary{Op: op, L: l, R: r, Type: t}, nil
}

// arithPartner is the type a string literal takes next to t in arithmetic.
func arithPartner(t Type) Type {
	switch t.Kind {
	case KindTimestamp, KindTimestamptz, KindTime, KindInterval:
		return TypeOf(KindInterval)
	}
	return t.Base()
}

func displayType(t Type) string {
	if t.IsUnknown() {
		return "unknown"
	}
	return t.String()
}

// temporalArith types date and time arithmetic. It returns the result
// type, the types to cast the operands to (zero for none), or a reason.
func temporalArith(op Op, l, r Type) (t, castL, castR Type, reason string) {
	if l.Array || r.Array {
		return
	}
	lk, rk := l.Kind, r.Kind
	integer := TypeOf(KindInteger)
	intArg := func(x Type) (Type, bool) {
		switch x.Kind {
		case KindInteger:
			return Type{}, true
		case KindSmallint:
			return integer, true
		}
		return Type{}, false
	}
	ts, iv := TypeOf(KindTimestamp), TypeOf(KindInterval)
	switch op {
	case OpAdd:
		switch {
		case lk == KindDate && r.IsInteger():
			if cr, ok := intArg(r); ok {
				return TypeOf(KindDate), Type{}, cr, ""
			}
		case l.IsInteger() && rk == KindDate:
			if cl, ok := intArg(l); ok {
				return TypeOf(KindDate), cl, Type{}, ""
			}
		case lk == KindDate && rk == KindInterval, lk == KindInterval && rk == KindDate,
			lk == KindTimestamp && rk == KindInterval, lk == KindInterval && rk == KindTimestamp,
			lk == KindDate && rk == KindTime, lk == KindTime && rk == KindDate:
			return ts, Type{}, Type{}, ""
		case lk == KindTime && rk == KindInterval, lk == KindInterval && rk == KindTime:
			return TypeOf(KindTime), Type{}, Type{}, ""
		case lk == KindInterval && rk == KindInterval:
			return iv, Type{}, Type{}, ""
		case lk == KindTimestamptz && rk == KindInterval, lk == KindInterval && rk == KindTimestamptz:
			return Type{}, Type{}, Type{}, "adding an interval to a timestamptz depends on the session time zone (days across daylight saving changes); convert it with AT TIME ZONE first"
		}
	case OpSub:
		switch {
		case lk == KindDate && r.IsInteger():
			if cr, ok := intArg(r); ok {
				return TypeOf(KindDate), Type{}, cr, ""
			}
		case lk == KindDate && rk == KindDate:
			return integer, Type{}, Type{}, ""
		case lk == KindDate && rk == KindInterval, lk == KindTimestamp && rk == KindInterval:
			return ts, Type{}, Type{}, ""
		case lk == KindTimestamp && rk == KindTimestamp, lk == KindTimestamptz && rk == KindTimestamptz,
			lk == KindTime && rk == KindTime, lk == KindInterval && rk == KindInterval:
			return iv, Type{}, Type{}, ""
		case lk == KindTime && rk == KindInterval:
			return TypeOf(KindTime), Type{}, Type{}, ""
		case lk == KindTimestamp && rk == KindDate:
			return iv, Type{}, ts, ""
		case lk == KindDate && rk == KindTimestamp:
			return iv, ts, Type{}, ""
		case lk == KindTimestamptz && rk == KindInterval:
			return Type{}, Type{}, Type{}, "subtracting an interval from a timestamptz depends on the session time zone (days across daylight saving changes); convert it with AT TIME ZONE first"
		}
	case OpMul:
		double := TypeOf(KindDouble)
		switch {
		case lk == KindInterval && r.IsNumeric():
			return iv, Type{}, castTo(r, double), ""
		case l.IsNumeric() && rk == KindInterval:
			return iv, castTo(l, double), Type{}, ""
		}
	case OpDiv:
		if lk == KindInterval && r.IsNumeric() {
			return iv, Type{}, castTo(r, TypeOf(KindDouble)), ""
		}
	}
	return
}

// castTo returns to when a value of from needs converting to it, else the
// zero Type.
func castTo(from, to Type) Type {
	if needsCast(from, to) {
		return to
	}
	return Type{}
}

// distinct rewrites IS [NOT] DISTINCT FROM with CASE and IS NULL, which
// have the same meaning:
//
//	a IS DISTINCT FROM b  =  CASE WHEN a IS NULL THEN b IS NOT NULL
//	                              WHEN b IS NULL THEN TRUE ELSE a <> b END
func (c *compiler) distinct(m *pg.A_Expr, cx ctx) (Expr, error) {
	loc := int(m.Location)
	l, err := c.expr(m.Lexpr, cx)
	if err != nil {
		return nil, err
	}
	r, err := c.expr(m.Rexpr, cx)
	if err != nil {
		return nil, err
	}
	not := m.Kind == pg.A_Expr_Kind_AEXPR_NOT_DISTINCT
	op := OpNe
	if not {
		op = OpEq
	}
	cmp, err := c.binary(op, l, r, loc)
	if err != nil {
		return nil, err
	}
	b := cmp.(*Binary)
	whenBNull := &Const{Value: "TRUE", Type: boolType}
	if not {
		whenBNull = &Const{Value: "FALSE", Type: boolType}
	}
	return &Case{
		Whens: []When{
			{Cond: &IsNull{X: b.L}, Result: &IsNull{X: b.R, Not: !not}},
			{Cond: &IsNull{X: b.R}, Result: whenBNull},
		},
		Else: b,
		Type: boolType,
	}, nil
}

func (c *compiler) nullif(a, b *pg.Node, cx ctx, loc int) (Expr, error) {
	l, err := c.expr(a, cx)
	if err != nil {
		return nil, err
	}
	r, err := c.expr(b, cx)
	if err != nil {
		return nil, err
	}
	cmp, err := c.binary(OpEq, l, r, loc)
	if err != nil {
		return nil, err
	}
	bin := cmp.(*Binary)
	return &Func{Name: "nullif", Args: []Expr{bin.L, bin.R}, Type: bin.L.ResultType()}, nil
}

func (c *compiler) in(m *pg.A_Expr, not bool, cx ctx) (Expr, error) {
	list := m.Rexpr.GetList()
	if list == nil {
		return nil, c.errAt(int(m.Location), "IN needs a list of values")
	}
	x, err := c.expr(m.Lexpr, cx)
	if err != nil {
		return nil, err
	}
	es := []Expr{x}
	for _, it := range list.Items {
		e, err := c.expr(it, cx)
		if err != nil {
			return nil, err
		}
		es = append(es, e)
	}
	es, t, err := c.unify("IN", es)
	if err != nil {
		return nil, err
	}
	if !hasEquality(t) {
		return nil, c.errAt(int(m.Location), "operator does not exist: %s = %s", t, t)
	}
	return &In{X: es[0], List: es[1:], Not: not}, nil
}

func (c *compiler) between(m *pg.A_Expr, not bool, cx ctx) (Expr, error) {
	list := m.Rexpr.GetList()
	if list == nil || len(list.Items) != 2 {
		return nil, c.errAt(int(m.Location), "BETWEEN needs two bounds")
	}
	var es []Expr
	for _, n := range []*pg.Node{m.Lexpr, list.Items[0], list.Items[1]} {
		e, err := c.expr(n, cx)
		if err != nil {
			return nil, err
		}
		es = append(es, e)
	}
	es, t, err := c.unify("BETWEEN", es)
	if err != nil {
		return nil, err
	}
	if !hasOrdering(t) {
		return nil, c.errAt(int(m.Location), "operator does not exist: %s <= %s", t, t)
	}
	return &Between{X: es[0], Lo: es[1], Hi: es[2], Not: not}, nil
}

// asBool converts a literal to boolean and checks that e is boolean.
func (c *compiler) asBool(e Expr, what string, loc int) (Expr, error) {
	if e.ResultType().IsUnknown() {
		var err error
		if e, err = c.convert(e, boolType); err != nil {
			return nil, err
		}
	}
	if t := e.ResultType(); t != boolType {
		if l, ok := c.locs[e]; ok && l >= 0 {
			loc = l
		}
		return nil, c.errAt(loc, "argument of %s must be type boolean, not type %s", what, t)
	}
	return e, nil
}

func (c *compiler) boolExpr(m *pg.BoolExpr, cx ctx) (Expr, error) {
	loc := int(m.Location)
	var args []Expr
	word := map[pg.BoolExprType]string{pg.BoolExprType_AND_EXPR: "AND", pg.BoolExprType_OR_EXPR: "OR", pg.BoolExprType_NOT_EXPR: "NOT"}[m.Boolop]
	for _, a := range m.Args {
		e, err := c.expr(a, cx)
		if err != nil {
			return nil, err
		}
		if e, err = c.asBool(e, word, nodeLoc(a)); err != nil {
			return nil, err
		}
		args = append(args, e)
	}
	switch m.Boolop {
	case pg.BoolExprType_NOT_EXPR:
		if len(args) != 1 {
			return nil, c.errAt(loc, "NOT takes one argument")
		}
		return &Unary{Op: OpNot, X: args[0], Type: boolType}, nil
	case pg.BoolExprType_AND_EXPR, pg.BoolExprType_OR_EXPR:
		if len(args) == 0 {
			return nil, c.errAt(loc, "%s needs arguments", word)
		}
		op := OpAnd
		if m.Boolop == pg.BoolExprType_OR_EXPR {
			op = OpOr
		}
		out := args[0]
		for _, a := range args[1:] {
			out = &Binary{Op: op, L: out, R: a, Type: boolType}
		}
		return out, nil
	}
	return nil, c.errAt(loc, "unsupported boolean operator")
}

// booleanTest rewrites IS [NOT] TRUE/FALSE/UNKNOWN, which never give
// NULL, with coalesce, NOT and IS NULL.
func (c *compiler) booleanTest(m *pg.BooleanTest, cx ctx) (Expr, error) {
	x, err := c.expr(m.Arg, cx)
	if err != nil {
		return nil, err
	}
	word := strings.ReplaceAll(m.Booltesttype.String(), "_", " ")
	if x, err = c.asBool(x, word, int(m.Location)); err != nil {
		return nil, err
	}
	falseConst := func() Expr { return &Const{Value: "FALSE", Type: boolType} }
	not := func(e Expr) Expr { return &Unary{Op: OpNot, X: e, Type: boolType} }
	coalesce := func(e Expr) Expr { return &Func{Name: "coalesce", Args: []Expr{e, falseConst()}, Type: boolType} }
	switch m.Booltesttype {
	case pg.BoolTestType_IS_TRUE:
		return coalesce(x), nil
	case pg.BoolTestType_IS_NOT_TRUE:
		return not(coalesce(x)), nil
	case pg.BoolTestType_IS_FALSE:
		return coalesce(not(x)), nil
	case pg.BoolTestType_IS_NOT_FALSE:
		return not(coalesce(not(x))), nil
	case pg.BoolTestType_IS_UNKNOWN:
		return &IsNull{X: x}, nil
	case pg.BoolTestType_IS_NOT_UNKNOWN:
		return &IsNull{X: x, Not: true}, nil
	}
	return nil, c.errAt(int(m.Location), "unsupported boolean test")
}

func (c *compiler) caseExpr(m *pg.CaseExpr, cx ctx) (Expr, error) {
	out := &Case{}
	var operand Expr
	if m.Arg != nil {
		var err error
		if operand, err = c.expr(m.Arg, cx); err != nil {
			return nil, err
		}
	}
	var conds, results []Expr
	for _, w := range m.Args {
		cw := w.GetCaseWhen()
		if cw == nil {
			return nil, c.errAt(nodeLoc(w), "malformed CASE")
		}
		cond, err := c.expr(cw.Expr, cx)
		if err != nil {
			return nil, err
		}
		if operand == nil {
			if cond, err = c.asBool(cond, "CASE/WHEN", nodeLoc(cw.Expr)); err != nil {
				return nil, err
			}
		}
		res, err := c.expr(cw.Result, cx)
		if err != nil {
			return nil, err
		}
		conds = append(conds, cond)
		results = append(results, res)
	}
	if operand != nil {
		es, t, err := c.unify("CASE/WHEN", append([]Expr{operand}, conds...))
		if err != nil {
			return nil, err
		}
		if !hasEquality(t) {
			return nil, c.errAt(int(m.Location), "operator does not exist: %s = %s", t, t)
		}
		operand, conds = es[0], es[1:]
	}
	var elseExpr Expr
	if m.Defresult != nil {
		var err error
		if elseExpr, err = c.expr(m.Defresult, cx); err != nil {
			return nil, err
		}
	}
	es, t, err := c.unify("CASE", append(results, elseExpr))
	if err != nil {
		return nil, err
	}
	out.Operand = operand
	for i := range conds {
		out.Whens = append(out.Whens, When{Cond: conds[i], Result: es[i]})
	}
	out.Else = es[len(es)-1]
	if k, ok := out.Else.(*Const); ok && k.Null {
		out.Else = nil
	}
	out.Type = t
	return out, nil
}

// variadic compiles coalesce, greatest and least: arguments of one common
// type, which is the result type.
func (c *compiler) variadic(name, what string, args []*pg.Node, cx ctx, loc int) (Expr, error) {
	if len(args) == 0 {
		return nil, c.errAt(loc, "%s needs arguments", what)
	}
	var es []Expr
	for _, a := range args {
		e, err := c.expr(a, cx)
		if err != nil {
			return nil, err
		}
		es = append(es, e)
	}
	es, t, err := c.unify(what, es)
	if err != nil {
		return nil, err
	}
	if name != "coalesce" && !hasOrdering(t) {
		return nil, c.errAt(loc, "could not identify a comparison function for type %s", t)
	}
	return &Func{Name: name, Args: es, Type: t}, nil
}
