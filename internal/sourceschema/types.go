package sourceschema

import (
	"fmt"
	"strings"

	"github.com/cdcq/cdcq/internal/flinksql"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// typed is a column type as one side of a comparison gives it: the plan's
// (col is nil) or the catalog's, which knows more (an enum's OID, an
// interval's modifier, format_type's spelling of other types).
type typed struct {
	t   sqlplan.Type
	col *Column
}

func planType(t sqlplan.Type) typed { return typed{t: t} }

func (c *Column) typed() typed { return typed{t: c.Type, col: c} }

// defaultTimePrecision is the fractional-second digits of time types
// declared without a precision.
const defaultTimePrecision = 6

// keepsMeaning reports whether every value of type from keeps its meaning
// as a value of type to (see the package documentation): whether
// ALTER COLUMN ... TYPE from to, which rewrites the rows without change
// events, leaves the values the engines hold right.
func keepsMeaning(from, to typed) bool {
	if from.t.Array != to.t.Array {
		return false
	}
	a, b := from.t.Elem(), to.t.Elem()
	if a.IsInteger() && b.IsInteger() {
		return true
	}
	if a.Kind != b.Kind {
		return unpadded(a) && unpadded(b)
	}
	catalog := from.col != nil && to.col != nil
	switch a.Kind {
	case sqlplan.KindNumeric:
		if b.Precision == sqlplan.NoPrecision {
			return true
		}
		return a.Precision != sqlplan.NoPrecision && b.Scale >= a.Scale
	case sqlplan.KindChar:
		return a.Precision == b.Precision
	case sqlplan.KindTimestamp, sqlplan.KindTimestamptz, sqlplan.KindTime, sqlplan.KindTimetz:
		return timePrecision(b) >= timePrecision(a)
	case sqlplan.KindInterval:
		// The plan's intervals carry no modifier (Prisma has none).
		return !catalog || intervalKeeps(from.col.TypeMod, to.col.TypeMod)
	case sqlplan.KindEnum:
		if catalog {
			return from.col.TypeOID == to.col.TypeOID
		}
		return enumSchema(a) == enumSchema(b) && a.Name == b.Name
	case sqlplan.KindOther:
		if catalog {
			return a.Name == b.Name
		}
		return otherName(a.Name) == otherName(b.Name)
	}
	return true
}

// unpadded reports whether t is text or varchar: strings whose trailing
// blanks count, which convert into each other unchanged.
func unpadded(t sqlplan.Type) bool {
	return t.Kind == sqlplan.KindText || t.Kind == sqlplan.KindVarchar
}

func timePrecision(t sqlplan.Type) int {
	if t.Precision == sqlplan.NoPrecision {
		return defaultTimePrecision
	}
	return t.Precision
}

// intervalKeeps reports whether interval values keep their meaning from
// the modifier before to after: the fields stay the same or become
// unrestricted, and the precision does not shrink.
func intervalKeeps(before, after int32) bool {
	rb, pb := intervalModifier(before)
	ra, pa := intervalModifier(after)
	const fullRange = 0x7fff
	return (ra == fullRange || ra == rb) && pa >= pb
}

// intervalModifier decodes an interval's typmod into its fields (a bit
// mask, 0x7fff for all) and its precision.
func intervalModifier(typmod int32) (fields, precision int32) {
	if typmod < 0 {
		return 0x7fff, defaultTimePrecision
	}
	fields, precision = typmod>>16&0x7fff, typmod&0xffff
	if precision == 0xffff {
		precision = defaultTimePrecision
	}
	return fields, precision
}

func enumSchema(t sqlplan.Type) string {
	if t.Schema == "" {
		return "public"
	}
	return t.Schema
}

// otherName puts the name of a type cdcq does not model into one
// spelling, so that the plan's (from Prisma's native type or
// Unsupported("...")) and format_type's compare: lower case, without
// blanks, quotes and a schema, "bit" as "bit(1)", "varbit" as
// "bit varying".
func otherName(s string) string {
	s = strings.ToLower(s)
	s = strings.NewReplacer(" ", "", "\t", "", "\n", "", `"`, "").Replace(s)
	paren := strings.IndexByte(s, '(')
	if paren < 0 {
		paren = len(s)
	}
	if dot := strings.LastIndexByte(s[:paren], '.'); dot >= 0 {
		s = s[dot+1:]
	}
	switch {
	case s == "bit":
		s = "bit(1)"
	case strings.HasPrefix(s, "varbit"):
		s = "bitvarying" + strings.TrimPrefix(s, "varbit")
	}
	return s
}

// canonical returns t with the defaults spelled out, so that types equal
// in meaning compare equal: time types without a precision as 6, an enum
// without a schema in public, other types in otherName's spelling.
func canonical(t sqlplan.Type) sqlplan.Type {
	switch t.Kind {
	case sqlplan.KindTimestamp, sqlplan.KindTimestamptz, sqlplan.KindTime, sqlplan.KindTimetz:
		t.Precision = timePrecision(t)
	case sqlplan.KindEnum:
		t.Schema = enumSchema(t)
	case sqlplan.KindOther:
		t.Name = otherName(t.Name)
	}
	return t
}

// inexact says why the type the engine declares for the plan's type cannot
// hold every value of the database's type db exactly; "" when it can, or
// when db is the plan's type (whose mapping is known when the query is
// created). It judges types that keep their meaning from plan to db
// (keepsMeaning); the others are reported for that.
func inexact(plan, db sqlplan.Type) string {
	if canonical(plan) == canonical(db) || plan.Array != db.Array {
		return ""
	}
	p, d := plan.Elem(), db.Elem()
	switch {
	case p.IsInteger() && d.IsInteger():
		if integerWidth(d.Kind) > integerWidth(p.Kind) {
			return fmt.Sprintf("the engine reads it as %s, which cannot hold every %s value", p, d)
		}
	case p.Kind == sqlplan.KindNumeric && d.Kind == sqlplan.KindNumeric:
		precision, scale := flinksql.DecimalOf(p)
		if d.Precision == sqlplan.NoPrecision || d.Scale > scale || d.Precision-d.Scale > precision-scale {
			return fmt.Sprintf("the engine reads it as DECIMAL(%d, %d), which cannot hold every %s value exactly", precision, scale, d)
		}
	case p.Kind == d.Kind && (p.Kind == sqlplan.KindTimestamp || p.Kind == sqlplan.KindTimestamptz || p.Kind == sqlplan.KindTime):
		digits := timePrecision(p)
		if p.Kind == sqlplan.KindTime {
			digits = min(digits, flinksql.MaxTimePrecision)
		}
		if timePrecision(d) > digits {
			return fmt.Sprintf("the engine reads it with %d fractional-second digits, fewer than %s keeps", digits, canonical(d))
		}
	}
	return ""
}

func integerWidth(k sqlplan.Kind) int {
	switch k {
	case sqlplan.KindSmallint:
		return 2
	case sqlplan.KindInteger:
		return 4
	}
	return 8
}
