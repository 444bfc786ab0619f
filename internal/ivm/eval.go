package ivm

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cdcq/cdcq/internal/sqlplan"
)

// env is what an expression reads: the rows of the current joined tuple
// (row expressions), or the key and aggregate values of the current group
// (group expressions).
type env struct {
	rows []*srow
	keys []Value
	aggs []Value
}

// evalFn computes one compiled expression.
type evalFn func(*env) (Value, error)

// exprCompiler turns plan expressions into evalFns, checking that every
// operation is one the engine computes exactly as PostgreSQL does.
type exprCompiler struct {
	plan *sqlplan.Plan
	// columns maps, per source, a column's database name to its index in
	// Source.Columns.
	columns []map[string]int
	// group is set when compiling group expressions (HAVING, outputs).
	group bool
}

// unsupported reports an expression the engine cannot maintain.
func unsupported(e sqlplan.Expr, format string, args ...any) error {
	return fmt.Errorf("the embedded engine cannot compute %s: %s", e, fmt.Sprintf(format, args...))
}

func (c *exprCompiler) compile(e sqlplan.Expr) (evalFn, error) {
	switch e := e.(type) {
	case *sqlplan.ColumnRef:
		if c.group {
			return nil, unsupported(e, "a column reference in a group expression")
		}
		if e.Source < 0 || e.Source >= len(c.columns) {
			return nil, unsupported(e, "source %d does not exist", e.Source)
		}
		idx, ok := c.columns[e.Source][e.Column]
		if !ok {
			return nil, unsupported(e, "column %s is not among the source's columns", e.Column)
		}
		if _, err := kindOf(e.Type); err != nil {
			return nil, unsupported(e, "%v", err)
		}
		s := e.Source
		return func(en *env) (Value, error) { return en.rows[s].vals[idx], nil }, nil
	case *sqlplan.Const:
		if e.Null {
			return func(*env) (Value, error) { return Value{}, nil }, nil
		}
		v, err := parseText(e.Type, e.Text())
		if err != nil {
			return nil, unsupported(e, "%v", err)
		}
		return func(*env) (Value, error) { return v, nil }, nil
	case *sqlplan.GroupRef:
		if !c.group || e.Index < 0 || e.Index >= len(c.plan.GroupBy) {
			return nil, unsupported(e, "no such group key")
		}
		i := e.Index
		return func(en *env) (Value, error) { return en.keys[i], nil }, nil
	case *sqlplan.AggRef:
		if !c.group || e.Index < 0 || e.Index >= len(c.plan.Aggregates) {
			return nil, unsupported(e, "no such aggregate")
		}
		i := e.Index
		return func(en *env) (Value, error) { return en.aggs[i], nil }, nil
	case *sqlplan.Binary:
		return c.binary(e)
	case *sqlplan.Unary:
		return c.unary(e)
	case *sqlplan.IsNull:
		x, err := c.compileAny(e.X)
		if err != nil {
			return nil, err
		}
		not := e.Not
		return func(en *env) (Value, error) {
			v, err := x(en)
			if err != nil {
				return Value{}, err
			}
			return BoolValue(v.IsNull() != not), nil
		}, nil
	case *sqlplan.In:
		return c.in(e)
	case *sqlplan.Between:
		return c.between(e)
	case *sqlplan.Case:
		return c.caseExpr(e)
	case *sqlplan.Cast:
		x, err := c.compile(e.X)
		if err != nil {
			return nil, err
		}
		conv, err := castFn(e.X.ResultType(), e.Type)
		if err != nil {
			return nil, unsupported(e, "%v", err)
		}
		return func(en *env) (Value, error) {
			v, err := x(en)
			if err != nil || v.IsNull() {
				return v, err
			}
			return conv(v)
		}, nil
	case *sqlplan.Func:
		return c.function(e)
	}
	return nil, fmt.Errorf("the embedded engine does not know the expression %s (%T)", e, e)
}

// compileAny compiles an expression whose value is only tested for NULL
// or counted, where columns of any type may appear.
func (c *exprCompiler) compileAny(e sqlplan.Expr) (evalFn, error) {
	if ref, ok := e.(*sqlplan.ColumnRef); ok && !c.group {
		if _, err := kindOf(ref.Type); err != nil {
			idx, ok := c.columns[ref.Source][ref.Column]
			if !ok {
				return nil, unsupported(e, "column %s is not among the source's columns", ref.Column)
			}
			s := ref.Source
			return func(en *env) (Value, error) { return en.rows[s].vals[idx], nil }, nil
		}
	}
	return c.compile(e)
}

func (c *exprCompiler) binary(e *sqlplan.Binary) (evalFn, error) {
	l, err := c.compile(e.L)
	if err != nil {
		return nil, err
	}
	r, err := c.compile(e.R)
	if err != nil {
		return nil, err
	}
	lt, rt := e.L.ResultType(), e.R.ResultType()
	switch e.Op {
	case sqlplan.OpAnd:
		return func(en *env) (Value, error) {
			a, err := l(en)
			if err != nil {
				return Value{}, err
			}
			if !a.IsNull() && !a.bool() {
				return a, nil
			}
			b, err := r(en)
			if err != nil {
				return Value{}, err
			}
			if !b.IsNull() && !b.bool() {
				return b, nil
			}
			if a.IsNull() || b.IsNull() {
				return Value{}, nil
			}
			return BoolValue(true), nil
		}, nil
	case sqlplan.OpOr:
		return func(en *env) (Value, error) {
			a, err := l(en)
			if err != nil {
				return Value{}, err
			}
			if !a.IsNull() && a.bool() {
				return a, nil
			}
			b, err := r(en)
			if err != nil {
				return Value{}, err
			}
			if !b.IsNull() && b.bool() {
				return b, nil
			}
			if a.IsNull() || b.IsNull() {
				return Value{}, nil
			}
			return BoolValue(false), nil
		}, nil
	case sqlplan.OpEq, sqlplan.OpNe, sqlplan.OpLt, sqlplan.OpLe, sqlplan.OpGt, sqlplan.OpGe:
		ok := equatable(lt) && equatable(rt)
		if e.Op != sqlplan.OpEq && e.Op != sqlplan.OpNe {
			ok = orderable(lt) && orderable(rt)
		}
		if !ok {
			return nil, unsupported(e, "comparison of %s and %s", lt, rt)
		}
		test := cmpTest(e.Op)
		return strict2(l, r, func(a, b Value) (Value, error) {
			return BoolValue(test(compare(a, b))), nil
		}), nil
	case sqlplan.OpConcat:
		if !lt.IsString() || !rt.IsString() {
			return nil, unsupported(e, "|| of %s and %s", lt, rt)
		}
		return strict2(l, r, func(a, b Value) (Value, error) {
			return TextValue(a.trimmed() + b.trimmed()), nil
		}), nil
	case sqlplan.OpLike, sqlplan.OpNotLike, sqlplan.OpILike, sqlplan.OpNotILike:
		if !lt.IsString() || !rt.IsString() {
			return nil, unsupported(e, "LIKE on %s", lt)
		}
		fold := e.Op == sqlplan.OpILike || e.Op == sqlplan.OpNotILike
		negate := e.Op == sqlplan.OpNotLike || e.Op == sqlplan.OpNotILike
		return strict2(l, r, func(a, b Value) (Value, error) {
			s, p := a.s, b.trimmed()
			if fold {
				s, p = asciiLower(s), asciiLower(p)
			}
			m, err := like(s, p)
			if err != nil {
				return Value{}, err
			}
			return BoolValue(m != negate), nil
		}), nil
	case sqlplan.OpAdd, sqlplan.OpSub, sqlplan.OpMul, sqlplan.OpDiv, sqlplan.OpMod:
		op, err := arithmetic(e, lt, rt)
		if err != nil {
			return nil, err
		}
		return strict2(l, r, op), nil
	}
	return nil, unsupported(e, "operator %s", e.Op)
}

func cmpTest(op sqlplan.Op) func(int) bool {
	switch op {
	case sqlplan.OpEq:
		return func(c int) bool { return c == 0 }
	case sqlplan.OpNe:
		return func(c int) bool { return c != 0 }
	case sqlplan.OpLt:
		return func(c int) bool { return c < 0 }
	case sqlplan.OpLe:
		return func(c int) bool { return c <= 0 }
	case sqlplan.OpGt:
		return func(c int) bool { return c > 0 }
	}
	return func(c int) bool { return c >= 0 }
}

// strict2 applies fn to two operands, giving NULL when either is NULL.
func strict2(l, r evalFn, fn func(a, b Value) (Value, error)) evalFn {
	return func(en *env) (Value, error) {
		a, err := l(en)
		if err != nil {
			return Value{}, err
		}
		b, err := r(en)
		if err != nil || a.IsNull() || b.IsNull() {
			return Value{}, err
		}
		return fn(a, b)
	}
}

var (
	errFloatOverflow  = errors.New("value out of range: overflow")
	errFloatUnderflow = errors.New("value out of range: underflow")
)

// arithmetic returns the operation for +, -, *, / and % with the result
// type the plan gives.
func arithmetic(e *sqlplan.Binary, lt, rt sqlplan.Type) (func(a, b Value) (Value, error), error) {
	t := e.Type
	switch {
	case t.IsInteger() && lt.IsInteger() && rt.IsInteger():
		lo, hi, msg := intRange(t.Kind)
		rangeErr := errors.New(msg)
		check := func(n int64, overflow bool) (Value, error) {
			if overflow || n < lo || n > hi {
				return Value{}, rangeErr
			}
			return IntValue(n), nil
		}
		switch e.Op {
		case sqlplan.OpAdd:
			return func(a, b Value) (Value, error) {
				s := a.i + b.i
				return check(s, (a.i >= 0) == (b.i >= 0) && (s >= 0) != (a.i >= 0))
			}, nil
		case sqlplan.OpSub:
			return func(a, b Value) (Value, error) {
				s := a.i - b.i
				return check(s, (a.i >= 0) != (b.i >= 0) && (s >= 0) != (a.i >= 0))
			}, nil
		case sqlplan.OpMul:
			return func(a, b Value) (Value, error) {
				hi, lo := bits.Mul64(uabs(a.i), uabs(b.i))
				neg := (a.i < 0) != (b.i < 0)
				if hi != 0 || lo > 1<<63 || lo == 1<<63 && !neg {
					return Value{}, rangeErr
				}
				n := int64(lo)
				if neg {
					n = -n
				}
				return check(n, false)
			}, nil
		case sqlplan.OpDiv:
			return func(a, b Value) (Value, error) {
				if b.i == 0 {
					return Value{}, errDivByZero
				}
				if b.i == -1 {
					return check(-a.i, a.i == math.MinInt64)
				}
				return check(a.i/b.i, false)
			}, nil
		case sqlplan.OpMod:
			return func(a, b Value) (Value, error) {
				if b.i == 0 {
					return Value{}, errDivByZero
				}
				if b.i == -1 {
					return IntValue(0), nil
				}
				return IntValue(a.i % b.i), nil
			}, nil
		}
	case t.Kind == sqlplan.KindNumeric && isNumberType(lt) && isNumberType(rt) && !lt.IsFloat() && !rt.IsFloat():
		switch e.Op {
		case sqlplan.OpAdd:
			return func(a, b Value) (Value, error) { return numericValue(decAdd(a.dec(), b.dec())), nil }, nil
		case sqlplan.OpSub:
			return func(a, b Value) (Value, error) { return numericValue(decSub(a.dec(), b.dec())), nil }, nil
		case sqlplan.OpMul:
			return func(a, b Value) (Value, error) {
				d, err := decMul(a.dec(), b.dec())
				return numericValue(d), err
			}, nil
		case sqlplan.OpDiv:
			return func(a, b Value) (Value, error) {
				d, err := decDiv(a.dec(), b.dec())
				return numericValue(d), err
			}, nil
		case sqlplan.OpMod:
			return func(a, b Value) (Value, error) {
				d, err := decMod(a.dec(), b.dec())
				return numericValue(d), err
			}, nil
		}
	case t.IsFloat() && isNumberType(lt) && isNumberType(rt) && e.Op != sqlplan.OpMod:
		f32 := t.Kind == sqlplan.KindReal
		var op func(x, y float64) (float64, error)
		switch e.Op {
		case sqlplan.OpAdd:
			op = func(x, y float64) (float64, error) { return x + y, nil }
		case sqlplan.OpSub:
			op = func(x, y float64) (float64, error) { return x - y, nil }
		case sqlplan.OpMul:
			op = func(x, y float64) (float64, error) {
				r := x * y
				if f32 {
					r = float64(float32(x) * float32(y))
				}
				if r == 0 && x != 0 && y != 0 {
					return 0, errFloatUnderflow
				}
				return r, nil
			}
		case sqlplan.OpDiv:
			op = func(x, y float64) (float64, error) {
				if y == 0 && !math.IsNaN(x) {
					return 0, errDivByZero
				}
				r := x / y
				if f32 {
					r = float64(float32(x) / float32(y))
				}
				if r == 0 && x != 0 && !math.IsInf(y, 0) {
					return 0, errFloatUnderflow
				}
				return r, nil
			}
		}
		return func(a, b Value) (Value, error) {
			x, y := a.float(), b.float()
			r, err := op(x, y)
			if err != nil {
				return Value{}, err
			}
			if f32 {
				r32 := float32(r)
				if math.IsInf(float64(r32), 0) && !math.IsInf(x, 0) && !math.IsInf(y, 0) {
					return Value{}, errFloatOverflow
				}
				return float4Value(r32), nil
			}
			if math.IsInf(r, 0) && !math.IsInf(x, 0) && !math.IsInf(y, 0) {
				return Value{}, errFloatOverflow
			}
			return Float8Value(r), nil
		}, nil
	case lt.Kind == sqlplan.KindDate && rt.IsInteger() && t.Kind == sqlplan.KindDate && (e.Op == sqlplan.OpAdd || e.Op == sqlplan.OpSub):
		neg := e.Op == sqlplan.OpSub
		return func(a, b Value) (Value, error) {
			if a.form != formFinite {
				return a, nil
			}
			n := b.i
			if neg {
				n = -n
			}
			return dateValue(a.i + n), nil
		}, nil
	case lt.IsInteger() && rt.Kind == sqlplan.KindDate && t.Kind == sqlplan.KindDate && e.Op == sqlplan.OpAdd:
		return func(a, b Value) (Value, error) {
			if b.form != formFinite {
				return b, nil
			}
			return dateValue(a.i + b.i), nil
		}, nil
	case lt.Kind == sqlplan.KindDate && rt.Kind == sqlplan.KindDate && e.Op == sqlplan.OpSub:
		return func(a, b Value) (Value, error) {
			if a.form != formFinite || b.form != formFinite {
				return Value{}, errors.New("cannot subtract infinite dates")
			}
			return IntValue(a.i - b.i), nil
		}, nil
	}
	return nil, unsupported(e, "%s %s %s giving %s", lt, e.Op, rt, t)
}

func isNumberType(t sqlplan.Type) bool { return t.IsNumeric() }

func (c *exprCompiler) unary(e *sqlplan.Unary) (evalFn, error) {
	x, err := c.compile(e.X)
	if err != nil {
		return nil, err
	}
	t := e.X.ResultType()
	switch {
	case e.Op == sqlplan.OpNot:
		return func(en *env) (Value, error) {
			v, err := x(en)
			if err != nil || v.IsNull() {
				return v, err
			}
			return BoolValue(!v.bool()), nil
		}, nil
	case e.Op == sqlplan.OpNeg && t.IsInteger():
		lo, _, msg := intRange(e.Type.Kind)
		return func(en *env) (Value, error) {
			v, err := x(en)
			if err != nil || v.IsNull() {
				return v, err
			}
			if v.i == lo {
				return Value{}, errors.New(msg)
			}
			return IntValue(-v.i), nil
		}, nil
	case e.Op == sqlplan.OpNeg && t.Kind == sqlplan.KindNumeric:
		return func(en *env) (Value, error) {
			v, err := x(en)
			if err != nil || v.IsNull() {
				return v, err
			}
			return numericValue(decNeg(v.dec())), nil
		}, nil
	case e.Op == sqlplan.OpNeg && t.IsFloat():
		return func(en *env) (Value, error) {
			v, err := x(en)
			if err != nil || v.IsNull() {
				return v, err
			}
			v.i = int64(math.Float64bits(-v.float()))
			return v, nil
		}, nil
	}
	return nil, unsupported(e, "%s of %s", e.Op, t)
}

func (c *exprCompiler) in(e *sqlplan.In) (evalFn, error) {
	x, err := c.compile(e.X)
	if err != nil {
		return nil, err
	}
	if !equatable(e.X.ResultType()) {
		return nil, unsupported(e, "IN on %s", e.X.ResultType())
	}
	list := make([]evalFn, len(e.List))
	for i, item := range e.List {
		if list[i], err = c.compile(item); err != nil {
			return nil, err
		}
	}
	not := e.Not
	return func(en *env) (Value, error) {
		v, err := x(en)
		if err != nil || v.IsNull() {
			return Value{}, err
		}
		sawNull := false
		for _, f := range list {
			w, err := f(en)
			if err != nil {
				return Value{}, err
			}
			if w.IsNull() {
				sawNull = true
				continue
			}
			if compare(v, w) == 0 {
				return BoolValue(!not), nil
			}
		}
		if sawNull {
			return Value{}, nil
		}
		return BoolValue(not), nil
	}, nil
}

func (c *exprCompiler) between(e *sqlplan.Between) (evalFn, error) {
	if !orderable(e.X.ResultType()) {
		return nil, unsupported(e, "BETWEEN on %s", e.X.ResultType())
	}
	x, err := c.compile(e.X)
	if err != nil {
		return nil, err
	}
	lo, err := c.compile(e.Lo)
	if err != nil {
		return nil, err
	}
	hi, err := c.compile(e.Hi)
	if err != nil {
		return nil, err
	}
	not := e.Not
	return func(en *env) (Value, error) {
		v, err := x(en)
		if err != nil {
			return Value{}, err
		}
		a, err := lo(en)
		if err != nil {
			return Value{}, err
		}
		b, err := hi(en)
		if err != nil {
			return Value{}, err
		}
		// x >= lo AND x <= hi, in three-valued logic.
		ge := tri(v, a, func(c int) bool { return c >= 0 })
		le := tri(v, b, func(c int) bool { return c <= 0 })
		var r int8
		switch {
		case ge == 0 || le == 0:
			r = 0
		case ge < 0 || le < 0:
			r = -1
		default:
			r = 1
		}
		if not && r >= 0 {
			r = 1 - r
		}
		return triValue(r), nil
	}, nil
}

// tri compares in three-valued logic: 1 true, 0 false, -1 unknown.
func tri(a, b Value, test func(int) bool) int8 {
	if a.IsNull() || b.IsNull() {
		return -1
	}
	if test(compare(a, b)) {
		return 1
	}
	return 0
}

// triValue converts the three-valued encoding of tri back to a Value.
func triValue(r int8) Value {
	switch r {
	case 1:
		return BoolValue(true)
	case 0:
		return BoolValue(false)
	}
	return Value{}
}

func (c *exprCompiler) caseExpr(e *sqlplan.Case) (evalFn, error) {
	var operand evalFn
	var err error
	if e.Operand != nil {
		if !equatable(e.Operand.ResultType()) {
			return nil, unsupported(e, "CASE on %s", e.Operand.ResultType())
		}
		if operand, err = c.compile(e.Operand); err != nil {
			return nil, err
		}
	}
	conds := make([]evalFn, len(e.Whens))
	results := make([]evalFn, len(e.Whens))
	for i, w := range e.Whens {
		if conds[i], err = c.compile(w.Cond); err != nil {
			return nil, err
		}
		if results[i], err = c.compile(w.Result); err != nil {
			return nil, err
		}
	}
	els := func(*env) (Value, error) { return Value{}, nil }
	if e.Else != nil {
		if els, err = c.compile(e.Else); err != nil {
			return nil, err
		}
	}
	return func(en *env) (Value, error) {
		var op Value
		if operand != nil {
			v, err := operand(en)
			if err != nil {
				return Value{}, err
			}
			op = v
		}
		for i, cond := range conds {
			v, err := cond(en)
			if err != nil {
				return Value{}, err
			}
			var match bool
			if operand != nil {
				match = !op.IsNull() && !v.IsNull() && compare(op, v) == 0
			} else {
				match = !v.IsNull() && v.bool()
			}
			if match {
				return results[i](en)
			}
		}
		return els(en)
	}, nil
}

func (c *exprCompiler) function(e *sqlplan.Func) (evalFn, error) {
	args := make([]evalFn, len(e.Args))
	for i, a := range e.Args {
		if e.Name == "coalesce" {
			f, err := c.compileAny(a)
			if err != nil {
				return nil, err
			}
			args[i] = f
			continue
		}
		if _, ok := a.(*sqlplan.Const); ok && i == 0 && (e.Name == "date_trunc" || e.Name == "extract" || e.Name == "date_part" || e.Name == "timezone") {
			continue // a constant unit, field or zone, read below
		}
		f, err := c.compile(a)
		if err != nil {
			return nil, err
		}
		args[i] = f
	}
	argType := func(i int) sqlplan.Type { return e.Args[i].ResultType() }
	constArg := func() (string, error) {
		k, ok := e.Args[0].(*sqlplan.Const)
		if !ok || k.Null {
			return "", unsupported(e, "the first argument must be a constant")
		}
		return strings.ToLower(k.Text()), nil
	}
	switch e.Name {
	case "coalesce":
		return func(en *env) (Value, error) {
			for _, a := range args {
				v, err := a(en)
				if err != nil || !v.IsNull() {
					return v, err
				}
			}
			return Value{}, nil
		}, nil
	case "nullif":
		if len(args) != 2 || !equatable(argType(0)) {
			return nil, unsupported(e, "nullif on %s", argType(0))
		}
		a, b := args[0], args[1]
		return func(en *env) (Value, error) {
			x, err := a(en)
			if err != nil {
				return Value{}, err
			}
			y, err := b(en)
			if err != nil {
				return Value{}, err
			}
			if !x.IsNull() && !y.IsNull() && compare(x, y) == 0 {
				return Value{}, nil
			}
			return x, nil
		}, nil
	case "greatest", "least":
		if !orderable(e.Type) {
			return nil, unsupported(e, "%s of %s", e.Name, e.Type)
		}
		want := 1
		if e.Name == "least" {
			want = -1
		}
		return func(en *env) (Value, error) {
			var best Value
			for _, a := range args {
				v, err := a(en)
				if err != nil {
					return Value{}, err
				}
				if v.IsNull() {
					continue
				}
				if best.IsNull() || compare(v, best)*want > 0 {
					best = v
				}
			}
			return best, nil
		}, nil
	case "lower", "upper":
		up := e.Name == "upper"
		return unaryFn(args[0], func(v Value) (Value, error) {
			if up {
				return TextValue(asciiUpper(v.trimmed())), nil
			}
			return TextValue(asciiLower(v.trimmed())), nil
		}), nil
	case "length":
		if argType(0).Kind == sqlplan.KindBytea {
			return unaryFn(args[0], func(v Value) (Value, error) { return IntValue(int64(len(v.s))), nil }), nil
		}
		return unaryFn(args[0], func(v Value) (Value, error) {
			return IntValue(int64(utf8.RuneCountInString(v.trimmed()))), nil
		}), nil
	case "substring":
		return substringFn(args), nil
	case "abs":
		t := e.Type
		switch {
		case t.IsInteger():
			lo, _, msg := intRange(t.Kind)
			return unaryFn(args[0], func(v Value) (Value, error) {
				if v.i == lo {
					return Value{}, errors.New(msg)
				}
				if v.i < 0 {
					return IntValue(-v.i), nil
				}
				return v, nil
			}), nil
		case t.Kind == sqlplan.KindNumeric:
			return unaryFn(args[0], func(v Value) (Value, error) { return numericValue(decAbs(v.dec())), nil }), nil
		case t.IsFloat():
			return unaryFn(args[0], func(v Value) (Value, error) {
				v.i = int64(math.Float64bits(math.Abs(v.float())))
				return v, nil
			}), nil
		}
	case "round", "ceil", "floor":
		if len(args) == 2 {
			return strict2(args[0], args[1], func(a, b Value) (Value, error) {
				n := b.i
				if n > maxDisplayScale {
					n = maxDisplayScale
				}
				if n < -maxDisplayScale {
					n = -maxDisplayScale
				}
				return numericValue(decRound(a.dec(), int32(n))), nil
			}), nil
		}
		if e.Type.Kind == sqlplan.KindNumeric {
			var f func(dec) dec
			switch e.Name {
			case "round":
				f = func(d dec) dec { return decRound(d, 0) }
			case "ceil":
				f = decCeil
			default:
				f = decFloor
			}
			return unaryFn(args[0], func(v Value) (Value, error) { return numericValue(f(v.dec())), nil }), nil
		}
		var f func(float64) float64
		switch e.Name {
		case "round":
			f = math.RoundToEven
		case "ceil":
			f = math.Ceil
		default:
			f = math.Floor
		}
		return unaryFn(args[0], func(v Value) (Value, error) { return Float8Value(f(v.float())), nil }), nil
	case "date_trunc":
		unit, err := constArg()
		if err != nil {
			return nil, err
		}
		if argType(1).Kind != sqlplan.KindTimestamp {
			return nil, unsupported(e, "date_trunc of %s", argType(1))
		}
		if _, err := truncTimestamp(unit, Value{k: kindTimestamp}); err != nil {
			return nil, unsupported(e, "%v", err)
		}
		return unaryFn(args[1], func(v Value) (Value, error) { return truncTimestamp(unit, v) }), nil
	case "extract", "date_part":
		field, err := constArg()
		if err != nil {
			return nil, err
		}
		k, err := kindOf(argType(1))
		if err != nil {
			return nil, unsupported(e, "%v", err)
		}
		if !extractFields[k][field] {
			return nil, unsupported(e, "field %q of %s", field, argType(1))
		}
		if e.Name == "date_part" {
			return unaryFn(args[1], func(v Value) (Value, error) {
				f, err := datePart(field, v)
				if errors.Is(err, errInfiniteField) {
					return Value{}, nil
				}
				return Float8Value(f), err
			}), nil
		}
		return unaryFn(args[1], func(v Value) (Value, error) {
			d, err := extract(field, v)
			if errors.Is(err, errInfiniteField) {
				return Value{}, nil
			}
			return numericValue(d), err
		}), nil
	case "timezone":
		if _, err := constArg(); err != nil {
			return nil, err
		}
		zone := e.Args[0].(*sqlplan.Const).Text()
		loc, err := loadZone(zone)
		if err != nil {
			return nil, unsupported(e, "time zone %q: %v", zone, err)
		}
		return unaryFn(args[1], func(v Value) (Value, error) { return atTimeZone(loc, v), nil }), nil
	}
	return nil, unsupported(e, "function %s", e.Name)
}

// loadZone resolves a time zone name: UTC and the IANA names Go knows.
func loadZone(name string) (*time.Location, error) {
	switch strings.ToUpper(name) {
	case "UTC", "GMT", "Z", "ZULU", "UCT", "ETC/UTC":
		return time.UTC, nil
	}
	if !strings.Contains(name, "/") {
		return nil, errors.New("only UTC and region names such as Europe/Paris are supported (PostgreSQL reads abbreviations and POSIX offsets with its own rules)")
	}
	return time.LoadLocation(name)
}

func unaryFn(x evalFn, fn func(Value) (Value, error)) evalFn {
	return func(en *env) (Value, error) {
		v, err := x(en)
		if err != nil || v.IsNull() {
			return Value{}, err
		}
		return fn(v)
	}
}

// substringFn is substring(s, from [, count]) on characters, with
// PostgreSQL's handling of starts before the string.
func substringFn(args []evalFn) evalFn {
	return func(en *env) (Value, error) {
		s, err := args[0](en)
		if err != nil {
			return Value{}, err
		}
		from, err := args[1](en)
		if err != nil {
			return Value{}, err
		}
		var count Value
		if len(args) == 3 {
			if count, err = args[2](en); err != nil {
				return Value{}, err
			}
			if count.IsNull() {
				return Value{}, nil
			}
		}
		if s.IsNull() || from.IsNull() {
			return Value{}, nil
		}
		str := s.trimmed()
		start := from.i
		end := int64(math.MaxInt64)
		if len(args) == 3 {
			if count.i < 0 {
				return Value{}, errors.New("negative substring length not allowed")
			}
			if count.i < math.MaxInt64-start {
				end = start + count.i
			}
		}
		if start < 1 {
			start = 1
		}
		if end <= start {
			return TextValue(""), nil
		}
		var b strings.Builder
		pos := int64(1)
		for _, r := range str {
			if pos >= end {
				break
			}
			if pos >= start {
				b.WriteRune(r)
			}
			pos++
		}
		return TextValue(b.String()), nil
	}
}

// asciiLower and asciiUpper change the case of ASCII letters only, as
// lower() and upper() do under the C locale.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func asciiUpper(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'a' && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// like matches s against a LIKE pattern: % any sequence, _ one character,
// backslash escapes the next character.
func like(s, p string) (bool, error) {
	si, pi := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch p[pi] {
			case '%':
				starP, starS = pi, si
				pi++
				continue
			case '_':
				_, n := utf8.DecodeRuneInString(s[si:])
				si += n
				pi++
				continue
			case '\\':
				if pi+1 >= len(p) {
					return false, errors.New("LIKE pattern must not end with escape character")
				}
				if p[pi+1] == s[si] {
					si++
					pi += 2
					continue
				}
			default:
				if p[pi] == s[si] {
					si++
					pi++
					continue
				}
			}
		}
		if starP < 0 {
			return false, nil
		}
		// Let the last % take one more character.
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		si = starS
		pi = starP + 1
	}
	for pi < len(p) && p[pi] == '%' {
		pi++
	}
	if pi < len(p) && p[pi] == '\\' && pi+1 >= len(p) {
		return false, errors.New("LIKE pattern must not end with escape character")
	}
	return pi == len(p), nil
}
