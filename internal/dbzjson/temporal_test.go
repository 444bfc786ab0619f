package dbzjson

import (
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/civil"
)

func TestDate(t *testing.T) {
	// source (JdbcValueConvertersTemporalPrecisionTest,
	// PostgresTemporalPrecisionHandlingIT): isostring writes DATE as IsoDate,
	// ISO_OFFSET_DATE at UTC: '2017-09-15' is "2017-09-15Z".
	runValueCases(t, col(oidDate, -1), []valueCase{
		{"plain", "2017-09-15", `"2017-09-15Z"`},
		{"epoch", "1970-01-01", `"1970-01-01Z"`},
		// java.time years are astronomical and signed outside 0000-9999.
		{"bc", "0044-03-15 BC", `"-0043-03-15Z"`},
		{"one_bc_is_year_zero", "0001-01-01 BC", `"0000-01-01Z"`},
		{"bc_leap_day", "0005-02-29 BC", `"-0004-02-29Z"`},
		{"five_digit_year", "10000-01-01", `"+10000-01-01Z"`},
		{"max", "5874897-12-31", `"+5874897-12-31Z"`},
		// source (docs silent): a streamed date goes through DateTimeFormat,
		// which maps infinity to POSITIVE_INFINITY_LOCAL_DATE, parsed from
		// "-5877611-06-21" (sic: the cluster test saw the minus sign), and
		// -infinity to NEGATIVE_INFINITY_LOCAL_DATE.
		{"infinity", "infinity", `"-5877611-06-21Z"`},
		{"minus_infinity", "-infinity", `"-5877611-06-22Z"`},
	})
}

// TestJDBCTemporal: the snapshot's dates and the elements of temporal
// arrays, which Debezium takes from pgjdbc's java.sql objects (jdbc.go).
// The expected values are what Java 17 prints for java.sql.Date and
// Timestamp built from a lenient GregorianCalendar at UTC (as pgjdbc builds
// them); the cluster test saw 0044-03-15 BC, 1582-10-10, 1000-01-01 and the
// infinities come out so.
func TestJDBCTemporal(t *testing.T) {
	snapshotDate := newColumnCodec(col(oidDate, -1), true)
	if snapshotDate.kind != kDateJDBC {
		t.Fatalf("snapshot date codec kind %d", snapshotDate.kind)
	}
	run := func(name string, c *codec, cases []valueCase) {
		t.Run(name, func(t *testing.T) {
			for _, tc := range cases {
				got, err := c.append(nil, tc.text)
				if err != nil || string(got) != tc.want {
					t.Errorf("%s: %q: got %s, %v; want %s", tc.name, tc.text, got, err, tc.want)
				}
			}
		})
	}
	// Date.toLocalDate: the calendar's fields without the era; the
	// Julian-Gregorian gap moves on ten days.
	run("date", snapshotDate, []valueCase{
		{"modern", "2020-02-29", `"2020-02-29Z"`},
		{"bc_loses_era", "0044-03-15 BC", `"0044-03-15Z"`},
		{"one_bc", "0001-01-01 BC", `"0001-01-01Z"`},
		{"julian_fields_kept", "1000-01-01", `"1000-01-01Z"`},
		{"before_gap", "1582-10-04", `"1582-10-04Z"`},
		{"gap_start", "1582-10-05", `"1582-10-15Z"`},
		{"gap", "1582-10-10", `"1582-10-20Z"`},
		{"gap_end", "1582-10-14", `"1582-10-24Z"`},
		{"cutover", "1582-10-15", `"1582-10-15Z"`},
		{"far_bc", "4713-01-01 BC", `"4713-01-01Z"`},
		{"infinity", "infinity", `"+292278994-08-16Z"`},
		{"minus_infinity", "-infinity", `"+292269055-12-02Z"`},
	})
	// Timestamp.toInstant: Julian fields come out as their proleptic
	// Gregorian date.
	run("timestamp_element", newScalarCodec(oidTimestamp, -1, "timestamp", pathElement), []valueCase{
		{"modern", "2020-04-01 10:00:00.5", `"2020-04-01T10:00:00.5Z"`},
		{"bc", "0044-03-15 10:00:00 BC", `"-0043-03-13T10:00:00Z"`},
		{"one_bc", "0001-01-01 10:00:00 BC", `"-0001-12-30T10:00:00Z"`},
		{"one_ad", "0001-01-01 10:00:00", `"0000-12-30T10:00:00Z"`},
		{"year_1000", "1000-01-01 10:00:00", `"1000-01-06T10:00:00Z"`},
		{"before_gap", "1582-10-04 10:00:00", `"1582-10-14T10:00:00Z"`},
		{"gap", "1582-10-10 10:00:00", `"1582-10-20T10:00:00Z"`},
		{"julian_leap", "1500-02-28 10:00:00", `"1500-03-09T10:00:00Z"`},
		{"far_bc", "4713-01-01 10:00:00 BC", `"-4713-11-24T10:00:00Z"`},
		{"farther_bc", "5000-06-01 10:00:00 BC", `"-4999-04-23T10:00:00Z"`},
		{"infinity", "infinity", `"+294247-01-10T04:00:25.2Z"`},
		{"minus_infinity", "-infinity", `"-290308-12-21T19:59:27.6Z"`},
	})
	// Timestamp.toLocalDateTime: fields without the era, at UTC.
	run("timestamptz_element", newScalarCodec(oidTimestamptz, -1, "timestamptz", pathElement), []valueCase{
		{"offset", "2020-04-01 14:51:03+02", `"2020-04-01T12:51:03.000000Z"`},
		{"bc", "0044-03-15 10:00:00+00 BC", `"0044-03-15T10:00:00.000000Z"`},
		{"year_1000", "1000-01-01 10:00:00+00", `"1000-01-01T10:00:00.000000Z"`},
		{"gap", "1582-10-10 10:00:00+00", `"1582-10-20T10:00:00.000000Z"`},
		// The offset moves the instant across the cutover: read back in
		// the Julian calendar.
		{"offset_across_cutover", "1582-10-15 02:00:00+05", `"1582-10-04T21:00:00.000000Z"`},
		{"infinity", "infinity", `"infinity"`},
		{"minus_infinity", "-infinity", `"+292269055-12-02T23:00:00.000000Z"`},
	})
}

func TestTime(t *testing.T) {
	// source: TIME is IsoTime, ISO_OFFSET_TIME at UTC; '04:05:11.789' is
	// "04:05:11.789Z" (PostgresTemporalPrecisionHandlingIT); seconds always
	// printed, fraction without trailing zeros ("10:30:01Z").
	runValueCases(t, col(oidTime, -1), []valueCase{
		{"millis", "04:05:11.789", `"04:05:11.789Z"`},
		{"whole", "10:30:01", `"10:30:01Z"`},
		{"midnight", "00:00:00", `"00:00:00Z"`},
		{"micros", "23:59:59.999999", `"23:59:59.999999Z"`},
		{"one_digit", "12:00:00.1", `"12:00:00.1Z"`},
		// IsoTime adds a Duration to midnight: the end of day wraps.
		{"end_of_day", "24:00:00", `"00:00:00Z"`},
	})
}

func TestTimetz(t *testing.T) {
	// docs: TIMETZ is io.debezium.time.ZonedTime, "a string representation
	// of a time value with timezone information, where the timezone is GMT".
	// source: '04:05:11 PST' is "12:05:11Z"; '13:51:30.123789+02' is
	// "11:51:30.123789Z" (AbstractRecordsProducerTest).
	runValueCases(t, col(oidTimetz, -1), []valueCase{
		{"pst", "04:05:11-08", `"12:05:11Z"`},
		{"micros", "13:51:30.123789+02", `"11:51:30.123789Z"`},
		{"wraps_forward", "20:00:00-08", `"04:00:00Z"`},
		{"wraps_back", "01:00:00+05:30", `"19:30:00Z"`},
		{"utc", "10:15:30+00", `"10:15:30Z"`},
		{"offset_seconds", "12:00:00+00:00:30", `"11:59:30Z"`},
		// OffsetTime.parse reads 24:00 as midnight (the cluster test saw
		// "00:00:00Z" for 24:00:00+00 and "23:00:00Z" for 24:00:00+01).
		{"end_of_day_utc", "24:00:00+00", `"00:00:00Z"`},
		{"end_of_day_offset", "24:00:00+01", `"23:00:00Z"`},
	})
}

func TestTimestamp(t *testing.T) {
	// source: TIMESTAMP is IsoTimestamp, ISO_OFFSET_DATE_TIME at UTC;
	// '2019-07-09 02:28:57.1' in timestamp(1) is "2019-07-09T02:28:57.1Z",
	// timestamp(0) "2019-07-09T02:28:57Z" (PostgresTemporalPrecisionHandlingIT).
	runValueCases(t, col(oidTimestamp, -1), []valueCase{
		{"precision_0", "2019-07-09 02:28:57", `"2019-07-09T02:28:57Z"`},
		{"precision_1", "2019-07-09 02:28:57.1", `"2019-07-09T02:28:57.1Z"`},
		{"precision_6", "2019-07-09 02:28:57.123456", `"2019-07-09T02:28:57.123456Z"`},
		{"bc", "2000-01-01 12:00:00 BC", `"-1999-01-01T12:00:00Z"`},
		{"bc_leap_day", "0005-02-29 12:00:00 BC", `"-0004-02-29T12:00:00Z"`},
		{"large_year", "21016-11-04 13:51:30.123456", `"+21016-11-04T13:51:30.123456Z"`},
		// source (docs silent for isostring): POSITIVE/NEGATIVE_INFINITY_LOCAL_DATE_TIME,
		// PGStatement.DATE_POSITIVE/NEGATIVE_INFINITY read as microseconds
		// (Conversions.toInstantFromMicros); the cluster test saw these.
		{"infinity", "infinity", `"+294247-01-10T04:00:25.2Z"`},
		{"minus_infinity", "-infinity", `"-290308-12-21T19:59:27.6Z"`},
	})
}

func TestTimestamptz(t *testing.T) {
	// docs: TIMESTAMPTZ is io.debezium.time.ZonedTimestamp in every mode,
	// "where the timezone is GMT". source: the fraction is padded to the
	// column scale, 6 without a typmod ("2020-04-01T11:51:02.000000Z",
	// "+21016-11-04T06:51:30.000000Z" in AbstractRecordsProducerTest), and
	// 'infinity' stays "infinity".
	runValueCases(t, col(oidTimestamptz, -1), []valueCase{
		{"utc", "2019-07-09 01:28:10.123456+00", `"2019-07-09T01:28:10.123456Z"`},
		{"padded_to_6", "2020-04-01 11:51:02+00", `"2020-04-01T11:51:02.000000Z"`},
		{"padded_short_fraction", "2020-04-01 11:51:02.5+00", `"2020-04-01T11:51:02.500000Z"`},
		{"offset_shifted", "2019-07-09 02:28:10.123456+01", `"2019-07-09T01:28:10.123456Z"`},
		{"offset_crosses_midnight", "2020-01-01 00:30:00+01", `"2019-12-31T23:30:00.000000Z"`},
		{"offset_crosses_leap_day", "2020-02-29 23:00:00-05:30", `"2020-03-01T04:30:00.000000Z"`},
		{"large_year", "21016-11-04 06:51:30+00", `"+21016-11-04T06:51:30.000000Z"`},
		{"bc", "0001-12-31 23:00:00-02 BC", `"0001-01-01T01:00:00.000000Z"`},
		{"infinity", "infinity", `"infinity"`},
		{"minus_infinity", "-infinity", `"-infinity"`},
	})
	runValueCases(t, col(oidTimestamptz, 3), []valueCase{
		{"precision_3", "2020-04-01 11:51:02.1+00", `"2020-04-01T11:51:02.100Z"`},
	})
	runValueCases(t, col(oidTimestamptz, 0), []valueCase{
		// Scale 0 uses the plain ISO formatter: no fraction.
		{"precision_0", "2020-04-01 11:51:02+00", `"2020-04-01T11:51:02Z"`},
	})
}

// TestInfinityInstants checks the stand-ins for infinite timestamps against
// the standard library's calendar.
func TestInfinityInstants(t *testing.T) {
	for _, us := range []int64{pgDatePositiveInfinity, pgDateNegativeInfinity, 0, -1, 1_000_000_000_123} {
		tm := time.UnixMicro(us).UTC()
		y := tm.Year()
		want := `"` + string(civil.AppendISODate(nil, int64(y), int(tm.Month()), tm.Day())) + tm.Format("T15:04:05.999999Z") + `"`
		if got := string(formatEpochMicros(us)); got != want {
			t.Errorf("formatEpochMicros(%d) = %s, want %s", us, got, want)
		}
	}
}

func TestInterval(t *testing.T) {
	// docs: INTERVAL is io.debezium.time.MicroDuration (INT64), "the
	// approximate number of microseconds ... using the 365.25 / 12.0 formula
	// for days per month average". source: INTERVAL '1' YEAR is
	// 31557600000000 (PostgresTemporalPrecisionHandlingIT).
	runValueCases(t, col(oidInterval, -1), []valueCase{
		{"one_year", "1 year", "31557600000000"},
		{"one_month", "1 mon", "2629800000000"}, // 30.4375 days
		{"ten_days", "10 days", "864000000000"}, // INTERVAL '10' DAY
		{"zero", "00:00:00", "0"},
		{"micro", "00:00:00.000001", "1"},
		{"all_fields", "1 year 2 mons 3 days 04:05:06.78", "37091106780000"},
		{"mixed_signs", "-1 days +02:03:00", "-79020000000"},
		{"negative_clock", "-00:00:01.5", "-1500000"},
		{"negative_fields", "-1 years -2 mons", "-36817200000000"},
		{"many_hours", "100:00:00", "360000000000"},
	})
}
