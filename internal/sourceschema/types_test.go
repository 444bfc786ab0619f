package sourceschema

import (
	"strings"
	"testing"

	"github.com/cdcq/cdcq/internal/sqlplan"
)

// The DDL tests apply the rules to real tables; these cover the rest of
// the table of type changes.

func TestKeepsMeaning(t *testing.T) {
	np := sqlplan.NoPrecision
	typ := sqlplan.TypeOf
	arr := sqlplan.ArrayType
	tests := []struct {
		from, to sqlplan.Type
		want     bool
	}{
		{typ(sqlplan.KindInteger), typ(sqlplan.KindInteger), true},
		{typ(sqlplan.KindBigint), typ(sqlplan.KindSmallint), true},
		{typ(sqlplan.KindInteger), typ(sqlplan.KindNumeric), false},
		{typ(sqlplan.KindInteger), typ(sqlplan.KindDouble), false},
		{typ(sqlplan.KindReal), typ(sqlplan.KindDouble), false},
		{typ(sqlplan.KindDouble), typ(sqlplan.KindReal), false},
		{sqlplan.NumericType(12, 2), sqlplan.NumericType(10, 2), true},
		{sqlplan.NumericType(12, 2), sqlplan.NumericType(30, 5), true},
		{sqlplan.NumericType(12, 2), typ(sqlplan.KindNumeric), true},
		{typ(sqlplan.KindNumeric), sqlplan.NumericType(38, 10), false},
		{sqlplan.NumericType(65, 30), sqlplan.NumericType(12, 2), false},
		{typ(sqlplan.KindText), sqlplan.VarcharType(10), true},
		{sqlplan.VarcharType(10), sqlplan.VarcharType(np), true},
		{sqlplan.CharType(3), sqlplan.CharType(3), true},
		{sqlplan.CharType(3), sqlplan.CharType(4), false},
		{sqlplan.CharType(3), typ(sqlplan.KindText), false},
		{sqlplan.VarcharType(3), sqlplan.CharType(np), false},
		{sqlplan.TimestampType(np), sqlplan.TimestampType(6), true},
		{sqlplan.TimestampType(6), sqlplan.TimestampType(np), true},
		{sqlplan.TimestampType(np), sqlplan.TimestampType(5), false},
		{sqlplan.TimestamptzType(3), sqlplan.TimestampType(3), false},
		{sqlplan.TimeType(2), sqlplan.TimeType(3), true},
		{sqlplan.TimetzType(3), sqlplan.TimetzType(2), false},
		{sqlplan.TimeType(3), sqlplan.TimetzType(3), false},
		{typ(sqlplan.KindDate), sqlplan.TimestampType(np), false},
		{typ(sqlplan.KindJSON), typ(sqlplan.KindJSONB), false},
		{typ(sqlplan.KindJSONB), typ(sqlplan.KindJSON), false},
		{typ(sqlplan.KindUUID), typ(sqlplan.KindText), false},
		{typ(sqlplan.KindBoolean), typ(sqlplan.KindBoolean), true},
		{sqlplan.EnumType("", "state"), sqlplan.EnumType("public", "state"), true},
		{sqlplan.EnumType("shop", "state"), sqlplan.EnumType("public", "state"), false},
		{sqlplan.EnumType("", "state"), typ(sqlplan.KindText), false},
		{arr(typ(sqlplan.KindInteger)), arr(typ(sqlplan.KindBigint)), true},
		{arr(sqlplan.VarcharType(20)), arr(typ(sqlplan.KindText)), true},
		{arr(sqlplan.NumericType(5, 2)), arr(sqlplan.NumericType(5, 1)), false},
		{arr(typ(sqlplan.KindText)), typ(sqlplan.KindText), false},
		{typ(sqlplan.KindText), arr(typ(sqlplan.KindText)), false},
		// Other types: Prisma's and format_type's spellings agree.
		{sqlplan.OtherType("inet"), sqlplan.OtherType("inet"), true},
		{sqlplan.OtherType("inet"), sqlplan.OtherType("cidr"), false},
		{sqlplan.OtherType("varbit"), sqlplan.OtherType("bit varying"), true},
		{sqlplan.OtherType("varbit(4)"), sqlplan.OtherType("bit varying(4)"), true},
		{sqlplan.OtherType("bit"), sqlplan.OtherType("bit(1)"), true},
		{sqlplan.OtherType("bit(8)"), sqlplan.OtherType("bit(4)"), false},
		{sqlplan.OtherType("citext"), sqlplan.OtherType("public.citext"), true},
		{sqlplan.OtherType("geometry(Point, 4326)"), sqlplan.OtherType("geometry(Point,4326)"), true},
	}
	for _, tt := range tests {
		if got := keepsMeaning(planType(tt.from), typed{t: tt.to, col: &Column{Type: tt.to}}); got != tt.want {
			t.Errorf("keepsMeaning(%v -> %v) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}

// Between two observations of the catalog, enums are told by OID (a
// renamed enum is the same type), other types by format_type's text, and
// intervals by their modifier.
func TestKeepsMeaningBetweenObservations(t *testing.T) {
	interval := sqlplan.TypeOf(sqlplan.KindInterval)
	col := func(t sqlplan.Type, oid uint32, typmod int32) typed {
		return typed{t: t, col: &Column{Type: t, TypeOID: oid, TypeMod: typmod}}
	}
	const (
		fullRange  = 0x7fff << 16
		daySecond  = (1<<3 | 1<<10 | 1<<11 | 1<<12) << 16 // DAY TO SECOND
		precision2 = 2
	)
	tests := []struct {
		name     string
		from, to typed
		want     bool
	}{
		{"enum renamed", col(sqlplan.EnumType("public", "a"), 100, -1), col(sqlplan.EnumType("public", "b"), 100, -1), true},
		{"other enum", col(sqlplan.EnumType("public", "a"), 100, -1), col(sqlplan.EnumType("public", "a"), 101, -1), false},
		{"other type text", col(sqlplan.OtherType("bit(4)"), 1560, 4), col(sqlplan.OtherType("bit(8)"), 1560, 8), false},
		{"interval unchanged", col(interval, 1186, -1), col(interval, 1186, -1), true},
		{"interval gains precision", col(interval, 1186, fullRange|precision2), col(interval, 1186, -1), true},
		{"interval loses precision", col(interval, 1186, -1), col(interval, 1186, fullRange|precision2), false},
		{"interval gains fields", col(interval, 1186, daySecond|0xffff), col(interval, 1186, -1), true},
		{"interval loses fields", col(interval, 1186, -1), col(interval, 1186, daySecond|0xffff), false},
		// The plan's interval has no modifier: any interval column fits.
		{"plan interval", planType(interval), col(interval, 1186, daySecond|precision2), true},
	}
	for _, tt := range tests {
		if got := keepsMeaning(tt.from, tt.to); got != tt.want {
			t.Errorf("%s: keepsMeaning = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestInexact(t *testing.T) {
	np := sqlplan.NoPrecision
	typ := sqlplan.TypeOf
	tests := []struct {
		plan, db sqlplan.Type
		want     string // a word of the reason; "" for none
	}{
		{typ(sqlplan.KindInteger), typ(sqlplan.KindBigint), "integer"},
		{typ(sqlplan.KindSmallint), typ(sqlplan.KindInteger), "smallint"},
		{typ(sqlplan.KindBigint), typ(sqlplan.KindSmallint), ""},
		{sqlplan.ArrayType(typ(sqlplan.KindInteger)), sqlplan.ArrayType(typ(sqlplan.KindBigint)), "integer"},
		{sqlplan.NumericType(12, 2), sqlplan.NumericType(12, 2), ""},
		{sqlplan.NumericType(12, 2), sqlplan.NumericType(11, 2), ""},
		{sqlplan.NumericType(12, 2), sqlplan.NumericType(13, 3), "DECIMAL(12, 2)"},
		{sqlplan.NumericType(12, 2), sqlplan.NumericType(13, 2), "DECIMAL(12, 2)"},
		// Prisma's default Decimal becomes DECIMAL(38, 16); the column's
		// own type is accepted, others must fit the DECIMAL.
		{sqlplan.NumericType(65, 30), sqlplan.NumericType(65, 30), ""},
		{sqlplan.NumericType(65, 30), sqlplan.NumericType(30, 16), ""},
		{sqlplan.NumericType(65, 30), sqlplan.NumericType(66, 30), "DECIMAL(38, 16)"},
		{typ(sqlplan.KindNumeric), typ(sqlplan.KindNumeric), ""},
		{typ(sqlplan.KindNumeric), sqlplan.NumericType(38, 16), ""},
		{typ(sqlplan.KindNumeric), sqlplan.NumericType(38, 17), "DECIMAL(38, 16)"},
		{sqlplan.NumericType(12, 2), typ(sqlplan.KindNumeric), "every numeric value"},
		{sqlplan.TimestampType(3), sqlplan.TimestampType(3), ""},
		{sqlplan.TimestampType(3), sqlplan.TimestampType(2), ""},
		{sqlplan.TimestampType(3), sqlplan.TimestampType(np), "3 fractional-second digits"},
		{sqlplan.TimestampType(np), sqlplan.TimestampType(6), ""},
		{sqlplan.TimestamptzType(0), sqlplan.TimestamptzType(1), "0 fractional-second digits"},
		// Flink's TIME keeps milliseconds: time(6) stays as the plan has it,
		// but a column with more digits than the plan's does not fit.
		{sqlplan.TimeType(np), sqlplan.TimeType(6), ""},
		{sqlplan.TimeType(2), sqlplan.TimeType(3), "2 fractional-second digits"},
		{sqlplan.TimeType(4), sqlplan.TimeType(5), "3 fractional-second digits"},
		{sqlplan.TimetzType(2), sqlplan.TimetzType(6), ""},
		{typ(sqlplan.KindText), sqlplan.VarcharType(5), ""},
	}
	for _, tt := range tests {
		got := inexact(tt.plan, tt.db)
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("inexact(%v, %v) = %q, want %q", tt.plan, tt.db, got, tt.want)
		}
	}
}
