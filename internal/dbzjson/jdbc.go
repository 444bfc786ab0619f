package dbzjson

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/cdcq/cdcq/internal/civil"
	"github.com/cdcq/cdcq/internal/floattext"
)

// Values that Debezium does not take from PostgreSQL's text but from the
// java.sql objects pgjdbc makes of it: the snapshot's dates
// (ResultSet.getObject gives a java.sql.Date) and the elements of date,
// time, timetz, timestamp and timestamptz arrays, streamed or not
// (PgArray.getArray gives java.sql.Date, Time and Timestamp).
//
// pgjdbc sets a date's fields in a lenient java.util.GregorianCalendar,
// which counts days before 1582-10-15 in the Julian calendar (so the
// proleptic Gregorian dates 1582-10-05 to 1582-10-14, which it has not,
// move ten days on) and keeps BC years as an era. Debezium then reads the
// object back either through the same calendar's fields, losing the era
// (Date.toLocalDate, Timestamp.toLocalDateTime: 44 BC is year 44), or
// through its instant (Timestamp.toInstant: java.time's proleptic calendar,
// so a Julian date comes out as its Gregorian equivalent).
//
// Both read the fields in the JVM's default time zone, which is taken to be
// UTC, as in Debezium's container images.

// gregorianCutover is the first day of GregorianCalendar's Gregorian
// calendar, 1582-10-15 (the day after Julian 1582-10-04).
var gregorianCutover = civil.Days(1582, 10, 15)

// unixEpochJDN is the Julian Day Number of 1970-01-01.
const unixEpochJDN = 2440588

// julianDays returns the day number (days since 1970-01-01) of a date of
// the Julian calendar, astronomical year.
func julianDays(y int64, m, d int) int64 {
	a := int64((14 - m) / 12)
	yy := y + 4800 - a
	mm := int64(m) + 12*a - 3
	return int64(d) + (153*mm+2)/5 + 365*yy + civil.FloorDiv(yy, 4) - 32083 - unixEpochJDN
}

// julianDate is the inverse of julianDays.
func julianDate(days int64) (y int64, m, d int) {
	c := days + unixEpochJDN + 32082
	yy := civil.FloorDiv(4*c+3, 1461)
	e := c - civil.FloorDiv(1461*yy, 4)
	mm := (5*e + 2) / 153
	d = int(e - (153*mm+2)/5 + 1)
	m = int(mm + 3 - 12*(mm/10))
	return yy - 4800 + mm/10, m, d
}

// calendarDays is the day number GregorianCalendar gives the fields
// y-m-d (astronomical year): Julian before the cutover.
func calendarDays(y int64, m, d int) int64 {
	if y < 1582 || y == 1582 && (m < 10 || m == 10 && d < 15) {
		return julianDays(y, m, d)
	}
	return civil.Days(y, m, d)
}

// calendarDate is the inverse of calendarDays.
func calendarDate(days int64) (y int64, m, d int) {
	if days < gregorianCutover {
		return julianDate(days)
	}
	return civil.Date(days)
}

// yearOfEra drops the era of an astronomical year, as
// java.sql.Date.toLocalDate does: 44 BC (-43) is 44.
func yearOfEra(y int64) int64 {
	if y <= 0 {
		return 1 - y
	}
	return y
}

// millisPerDay is java.util.Date's day in milliseconds.
const millisPerDay = 86_400_000

// appendDateJDBC writes a date as Debezium writes a java.sql.Date from
// pgjdbc: the calendar's fields without the era; infinity and -infinity are
// pgjdbc's stand-in instants read the same way.
func appendDateJDBC(dst []byte, s string) ([]byte, error) {
	var days int64
	switch s {
	case "infinity":
		days = civil.FloorDiv(pgDatePositiveInfinity, millisPerDay)
	case "-infinity":
		days = civil.FloorDiv(pgDateNegativeInfinity, millisPerDay)
	default:
		s, bc := cutBC(s)
		y, m, d, rest, ok := civil.ParseDate(s)
		if !ok || rest != "" {
			return dst, errSyntax
		}
		if bc {
			y = 1 - y
		}
		days = calendarDays(y, m, d)
	}
	y, m, d := calendarDate(days)
	dst = append(dst, '"')
	dst = civil.AppendISODate(dst, yearOfEra(y), m, d)
	return append(dst, 'Z', '"'), nil
}

// appendTimeJDBC writes a time[] element: java.sql.Time keeps
// milliseconds; 24:00:00 is the next day's midnight.
func appendTimeJDBC(dst []byte, s string) ([]byte, error) {
	t, rest, ok := civil.ParseClock(s)
	if !ok || rest != "" {
		return dst, errSyntax
	}
	t = t / 1000 * 1000 % civil.MicrosPerDay
	dst = append(dst, '"')
	dst = civil.AppendClock(dst, t, 0)
	return append(dst, 'Z', '"'), nil
}

// appendTimetzJDBC writes a timetz[] element: Debezium reads the
// java.sql.Time with toLocalTime, which keeps whole seconds, at UTC.
func appendTimetzJDBC(dst []byte, s string) ([]byte, error) {
	t, rest, ok := civil.ParseClock(s)
	if !ok {
		return dst, errSyntax
	}
	off, ok := civil.ParseOffset(rest)
	if !ok {
		return dst, errSyntax
	}
	u := (t - off*civil.MicrosPerSecond) % civil.MicrosPerDay
	if u < 0 {
		u += civil.MicrosPerDay
	}
	u -= u % civil.MicrosPerSecond
	dst = append(dst, '"')
	dst = civil.AppendClock(dst, u, 0)
	return append(dst, 'Z', '"'), nil
}

// appendTimestampJDBC writes a timestamp[] element: Debezium takes the
// java.sql.Timestamp's instant, so a date before the cutover comes out as
// its proleptic Gregorian equivalent (1000-01-01 is 1000-01-06); the
// infinities are the stand-ins of scalar timestamps.
func appendTimestampJDBC(dst []byte, s string) ([]byte, error) {
	return appendTimestampIn(dst, s, func(y int64, m, d int) (int64, int, int) {
		return civil.Date(calendarDays(y, m, d))
	})
}

// appendTimestamptzJDBC writes a timestamptz[] element: Debezium reads
// the java.sql.Timestamp's fields (toLocalDateTime) at UTC, without the
// era; infinity stays "infinity" and -infinity is pgjdbc's stand-in read
// the same way.
func appendTimestamptzJDBC(dst []byte, s string, frac int) ([]byte, error) {
	var days, tod int64
	switch s {
	case "infinity":
		return appendString(dst, s), nil
	case "-infinity":
		// In milliseconds: the stand-in overflows as microseconds.
		days = civil.FloorDiv(pgDateNegativeInfinity, millisPerDay)
		tod = (pgDateNegativeInfinity - days*millisPerDay) * 1000
	default:
		y, m, d, t, rest, ok := parseTimestamp(s)
		if !ok {
			return dst, errSyntax
		}
		off, ok := civil.ParseOffset(rest)
		if !ok {
			return dst, errSyntax
		}
		days, tod = civil.SplitMicros(calendarDays(y, m, d)*civil.MicrosPerDay + t - off*civil.MicrosPerSecond)
	}
	y, m, d := calendarDate(days)
	dst = append(dst, '"')
	dst = civil.AppendISODate(dst, yearOfEra(y), m, d)
	dst = append(dst, 'T')
	dst = civil.AppendClock(dst, tod, frac)
	return append(dst, 'Z', '"'), nil
}

// appendPoint writes a point as io.debezium.data.geometry.Point: the
// struct {x, y, wkb, srid} with the coordinates as doubles and wkb the
// point's little-endian Well-Known Binary (base64, as JsonConverter writes
// BYTES), srid null.
func appendPoint(dst []byte, s string) ([]byte, error) {
	inner, open := strings.CutPrefix(s, "(")
	inner, closed := strings.CutSuffix(inner, ")")
	if !open || !closed {
		return dst, errSyntax
	}
	xs, ys, ok := strings.Cut(inner, ",")
	if !ok {
		return dst, errSyntax
	}
	x, err1 := strconv.ParseFloat(xs, 64)
	y, err2 := strconv.ParseFloat(ys, 64)
	if err1 != nil || err2 != nil {
		return dst, errSyntax
	}
	var wkb [21]byte
	wkb[0] = 1                                // little-endian
	binary.LittleEndian.PutUint32(wkb[1:], 1) // wkbPoint
	binary.LittleEndian.PutUint64(wkb[5:], javaBits(x))
	binary.LittleEndian.PutUint64(wkb[13:], javaBits(y))
	dst = append(dst, `{"x":`...)
	dst = floattext.AppendJacksonJSON(dst, x, 64)
	dst = append(dst, `,"y":`...)
	dst = floattext.AppendJacksonJSON(dst, y, 64)
	dst = append(dst, `,"wkb":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, wkb[:])
	return append(dst, `","srid":null}`...), nil
}

// javaBits is Double.doubleToRawLongBits of a double Java parsed: its NaN
// is the canonical one.
func javaBits(f float64) uint64 {
	if math.IsNaN(f) {
		return 0x7ff8000000000000
	}
	return math.Float64bits(f)
}
