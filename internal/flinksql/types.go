package flinksql

import (
	"fmt"
	"strconv"

	"github.com/cdcq/cdcq/internal/sqlplan"
)

// Flink's limits and cdcq's choices for PostgreSQL types without them.
const (
	maxDecimalPrecision = 38
	// defaultDecimalScale is the scale of numeric without precision (and
	// the largest kept of numeric(p,s) with p > 38): PostgreSQL shows at
	// least 16 significant fraction digits for avg and division, and 22
	// integer digits hold any sum of bigints in practice.
	defaultDecimalScale = 16
	// defaultTimePrecision is PostgreSQL's: microseconds.
	defaultTimePrecision = 6
	// maxTimePrecision is what Flink's TIME keeps (milliseconds).
	maxTimePrecision = MaxTimePrecision
)

// MaxTimePrecision is the fractional-second digits Flink's TIME keeps: a
// job reads a time column with more as TIME(3).
const MaxTimePrecision = 3

// flinkType returns the Flink SQL type that holds values of t in query
// results and expressions.
func flinkType(t sqlplan.Type) (string, error) {
	if t.Array {
		elem, err := flinkType(t.Elem())
		if err != nil {
			return "", err
		}
		return "ARRAY<" + elem + ">", nil
	}
	switch t.Kind {
	case sqlplan.KindSmallint:
		return "SMALLINT", nil
	case sqlplan.KindInteger:
		return "INT", nil
	case sqlplan.KindBigint:
		return "BIGINT", nil
	case sqlplan.KindNumeric:
		p, s := DecimalOf(t)
		return fmt.Sprintf("DECIMAL(%d, %d)", p, s), nil
	case sqlplan.KindReal:
		return "FLOAT", nil
	case sqlplan.KindDouble:
		return "DOUBLE", nil
	case sqlplan.KindBoolean:
		return "BOOLEAN", nil
	case sqlplan.KindText, sqlplan.KindVarchar, sqlplan.KindChar, sqlplan.KindUUID,
		sqlplan.KindJSON, sqlplan.KindJSONB, sqlplan.KindEnum, sqlplan.KindTimetz, sqlplan.KindOther:
		return "STRING", nil
	case sqlplan.KindDate:
		return "DATE", nil
	case sqlplan.KindTime:
		return "TIME(" + strconv.Itoa(min(precision(t), maxTimePrecision)) + ")", nil
	case sqlplan.KindTimestamp:
		return "TIMESTAMP(" + strconv.Itoa(precision(t)) + ")", nil
	case sqlplan.KindTimestamptz:
		return "TIMESTAMP_LTZ(" + strconv.Itoa(precision(t)) + ")", nil
	case sqlplan.KindBytea:
		return "BYTES", nil
	case sqlplan.KindInterval:
		return "", unsupportedf("interval values have no Flink translation yet (Debezium sends them as microseconds)")
	}
	return "", unsupportedf("type %s has no Flink translation", t)
}

// sourceType returns the type a source table declares for a column of
// type t: the Flink type, except where Flink's JSON format cannot parse
// Debezium's isostring text (see the package doc), and whether the query
// must convert the column (sourceColumn renders the conversion).
func sourceType(t sqlplan.Type) (string, bool, error) {
	if t.Array {
		switch t.Kind {
		case sqlplan.KindDate, sqlplan.KindTime, sqlplan.KindTimestamp:
			return "", false, unsupportedf("arrays of %s have no Flink translation: Flink cannot parse Debezium's ISO-8601 text inside an array", t.Elem())
		}
		ft, err := flinkType(t)
		return ft, false, err
	}
	switch t.Kind {
	case sqlplan.KindDate, sqlplan.KindTime:
		return "STRING", true, nil
	case sqlplan.KindTimestamp:
		return "TIMESTAMP_LTZ(" + strconv.Itoa(precision(t)) + ")", true, nil
	}
	ft, err := flinkType(t)
	return ft, false, err
}

// DecimalOf maps a numeric type to the precision and scale of the Flink
// DECIMAL a job declares for it (the source schema check judges by it
// which numeric values a job reads exactly).
func DecimalOf(t sqlplan.Type) (precision, scale int) {
	if t.Precision == sqlplan.NoPrecision {
		return maxDecimalPrecision, defaultDecimalScale
	}
	if t.Precision > maxDecimalPrecision {
		return maxDecimalPrecision, min(t.Scale, defaultDecimalScale)
	}
	return t.Precision, t.Scale
}

// precision is the fractional-second digits of a time type.
func precision(t sqlplan.Type) int {
	if t.Precision == sqlplan.NoPrecision {
		return defaultTimePrecision
	}
	return t.Precision
}

// integerDigits is how many decimal digits an integer kind needs.
func integerDigits(k sqlplan.Kind) int {
	switch k {
	case sqlplan.KindSmallint:
		return 5
	case sqlplan.KindInteger:
		return 10
	}
	return 19
}
