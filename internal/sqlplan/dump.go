package sqlplan

import (
	"fmt"
	"strings"
)

// String renders the plan as readable text, one clause per section. The
// format is for people and golden files, not for parsing.
func (p *Plan) String() string {
	var b strings.Builder
	aliases := make([]string, len(p.Sources))
	for i, s := range p.Sources {
		aliases[i] = s.Alias
	}
	str := func(e Expr) string { return exprString(e, aliases) }
	b.WriteString("sources:\n")
	for _, s := range p.Sources {
		fmt.Fprintf(&b, "  %s: %s.%s topic=%s key=(%s)\n", s.Alias, s.Schema, s.Name, s.Topic, strings.Join(s.PrimaryKey, ", "))
		for _, col := range s.Columns {
			fmt.Fprintf(&b, "    %s %s", col.Name, col.Type)
			if col.Key {
				b.WriteString(" key")
			}
			if col.Nullable {
				b.WriteString(" null")
			}
			b.WriteByte('\n')
		}
	}
	if len(p.Joins) > 0 {
		b.WriteString("joins:\n")
		for _, j := range p.Joins {
			fmt.Fprintf(&b, "  %s = %s\n", str(j.Left), str(j.Right))
		}
	}
	if p.Filter != nil {
		fmt.Fprintf(&b, "filter: %s\n", str(p.Filter))
	}
	if len(p.GroupBy) > 0 {
		b.WriteString("group by:\n")
		for i, g := range p.GroupBy {
			fmt.Fprintf(&b, "  group[%d] = %s : %s\n", i, str(g), g.ResultType())
		}
	}
	if len(p.Aggregates) > 0 {
		b.WriteString("aggregates:\n")
		for i, a := range p.Aggregates {
			fmt.Fprintf(&b, "  agg[%d] = %s : %s\n", i, aggString(a, aliases), a.Type)
		}
	}
	if p.Having != nil {
		fmt.Fprintf(&b, "having: %s\n", str(p.Having))
	}
	b.WriteString("outputs:\n")
	for _, o := range p.Outputs {
		fmt.Fprintf(&b, "  %s %s = %s\n", QuoteIdent(o.Name), o.Type, str(o.Expr))
	}
	if len(p.OrderBy) > 0 {
		b.WriteString("order by:\n")
		for _, k := range p.OrderBy {
			dir, nulls := "ASC", "NULLS LAST"
			if k.Desc {
				dir = "DESC"
			}
			if k.NullsFirst {
				nulls = "NULLS FIRST"
			}
			fmt.Fprintf(&b, "  %s %s %s\n", str(k.Expr), dir, nulls)
		}
	}
	fmt.Fprintf(&b, "normalized: %s\n", p.Normalized)
	return b.String()
}

// String renders the aggregate call with sources by index (s0.col).
func (a Aggregate) String() string { return aggString(a, nil) }

func aggString(a Aggregate, aliases []string) string {
	switch a.Func {
	case CountStar:
		return "count(*)"
	case CountDistinct:
		return "count(DISTINCT " + exprString(a.Arg, aliases) + ")"
	}
	return a.Func.String() + "(" + exprString(a.Arg, aliases) + ")"
}

func (e *ColumnRef) String() string { return exprString(e, nil) }
func (e *Const) String() string     { return exprString(e, nil) }
func (e *Binary) String() string    { return exprString(e, nil) }
func (e *Unary) String() string     { return exprString(e, nil) }
func (e *IsNull) String() string    { return exprString(e, nil) }
func (e *In) String() string        { return exprString(e, nil) }
func (e *Between) String() string   { return exprString(e, nil) }
func (e *Case) String() string      { return exprString(e, nil) }
func (e *Cast) String() string      { return exprString(e, nil) }
func (e *Func) String() string      { return exprString(e, nil) }
func (e *AggRef) String() string    { return exprString(e, nil) }
func (e *GroupRef) String() string  { return exprString(e, nil) }

// exprString renders e. Sources are named by alias when aliases is given,
// else s<index>. Constants other than integers, booleans and text show
// their type; implicit casts read x::type and explicit ones CAST(x AS type).
func exprString(e Expr, aliases []string) string {
	var b strings.Builder
	writeExpr(&b, e, aliases)
	return b.String()
}

func writeExpr(b *strings.Builder, e Expr, aliases []string) {
	w := func(x Expr) { writeExpr(b, x, aliases) }
	switch e := e.(type) {
	case nil:
		b.WriteString("<nil>")
	case *ColumnRef:
		if e.Source >= 0 && e.Source < len(aliases) {
			b.WriteString(QuoteIdent(aliases[e.Source]))
		} else {
			fmt.Fprintf(b, "s%d", e.Source)
		}
		b.WriteByte('.')
		b.WriteString(QuoteIdent(e.Column))
	case *Const:
		b.WriteString(e.Value)
		switch {
		case e.Type == TypeOf(KindInteger) && !e.Null, e.Type == boolType && !e.Null, e.Type == TypeOf(KindText) && !e.Null:
		default:
			b.WriteString("::")
			b.WriteString(e.Type.String())
		}
	case *Binary:
		b.WriteByte('(')
		w(e.L)
		b.WriteString(" " + string(e.Op) + " ")
		w(e.R)
		b.WriteByte(')')
	case *Unary:
		b.WriteString("(" + string(e.Op) + " ")
		w(e.X)
		b.WriteByte(')')
	case *IsNull:
		b.WriteByte('(')
		w(e.X)
		if e.Not {
			b.WriteString(" IS NOT NULL)")
		} else {
			b.WriteString(" IS NULL)")
		}
	case *In:
		b.WriteByte('(')
		w(e.X)
		if e.Not {
			b.WriteString(" NOT")
		}
		b.WriteString(" IN (")
		for i, x := range e.List {
			if i > 0 {
				b.WriteString(", ")
			}
			w(x)
		}
		b.WriteString("))")
	case *Between:
		b.WriteByte('(')
		w(e.X)
		if e.Not {
			b.WriteString(" NOT")
		}
		b.WriteString(" BETWEEN ")
		w(e.Lo)
		b.WriteString(" AND ")
		w(e.Hi)
		b.WriteByte(')')
	case *Case:
		b.WriteString("CASE")
		if e.Operand != nil {
			b.WriteByte(' ')
			w(e.Operand)
		}
		for _, wh := range e.Whens {
			b.WriteString(" WHEN ")
			w(wh.Cond)
			b.WriteString(" THEN ")
			w(wh.Result)
		}
		if e.Else != nil {
			b.WriteString(" ELSE ")
			w(e.Else)
		}
		b.WriteString(" END")
	case *Cast:
		if e.Implicit {
			if _, isConst := e.X.(*Const); isConst {
				b.WriteByte('(')
				w(e.X)
				b.WriteByte(')')
			} else {
				w(e.X)
			}
			b.WriteString("::" + e.Type.String())
		} else {
			b.WriteString("CAST(")
			w(e.X)
			b.WriteString(" AS " + e.Type.String() + ")")
		}
	case *Func:
		b.WriteString(e.Name + "(")
		for i, x := range e.Args {
			if i > 0 {
				b.WriteString(", ")
			}
			w(x)
		}
		b.WriteByte(')')
	case *AggRef:
		fmt.Fprintf(b, "agg[%d]", e.Index)
	case *GroupRef:
		fmt.Fprintf(b, "group[%d]", e.Index)
	default:
		fmt.Fprintf(b, "<%T>", e)
	}
}
