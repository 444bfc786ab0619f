package dbzjson

import "strings"

// Built-in type OIDs (pg_type.oid; stable across PostgreSQL releases). The
// real-Postgres test checks this table against pg_type.
const (
	oidBool        = 16
	oidBytea       = 17
	oidChar        = 18
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidInt2Vector  = 22
	oidOID         = 26
	oidOIDVector   = 30
	oidJSON        = 114
	oidXML         = 142
	oidPoint       = 600
	oidBox         = 603
	oidCIDR        = 650
	oidFloat4      = 700
	oidFloat8      = 701
	oidMacaddr8    = 774
	oidMoney       = 790
	oidMacaddr     = 829
	oidInet        = 869
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidTimetz      = 1266
	oidBit         = 1560
	oidVarbit      = 1562
	oidNumeric     = 1700
	oidUUID        = 2950
	oidTSVector    = 3614
	oidJSONB       = 3802
	oidInt4Range   = 3904
	oidNumRange    = 3906
	oidTSRange     = 3908
	oidTSTZRange   = 3910
	oidDateRange   = 3912
	oidInt8Range   = 3926

	// firstNormalOID is where the OIDs of objects created after initdb
	// start: types of extensions and user-defined types.
	firstNormalOID = 16384
)

// builtinTypes pairs the built-in types with their array types.
var builtinTypes = []struct {
	name       string
	oid, array uint32
}{
	{"bool", oidBool, 1000},
	{"bytea", oidBytea, 1001},
	{"char", oidChar, 1002},
	{"name", oidName, 1003},
	{"int8", oidInt8, 1016},
	{"int2", oidInt2, 1005},
	{"int4", oidInt4, 1007},
	{"text", oidText, 1009},
	{"oid", oidOID, 1028},
	{"json", oidJSON, 199},
	{"xml", oidXML, 143},
	{"box", oidBox, 1020},
	{"cidr", oidCIDR, 651},
	{"float4", oidFloat4, 1021},
	{"float8", oidFloat8, 1022},
	{"macaddr8", oidMacaddr8, 775},
	{"money", oidMoney, 791},
	{"macaddr", oidMacaddr, 1040},
	{"inet", oidInet, 1041},
	{"bpchar", oidBPChar, 1014},
	{"varchar", oidVarchar, 1015},
	{"date", oidDate, 1182},
	{"time", oidTime, 1183},
	{"timestamp", oidTimestamp, 1115},
	{"timestamptz", oidTimestamptz, 1185},
	{"interval", oidInterval, 1187},
	{"timetz", oidTimetz, 1270},
	{"bit", oidBit, 1561},
	{"varbit", oidVarbit, 1563},
	{"numeric", oidNumeric, 1231},
	{"uuid", oidUUID, 2951},
	{"jsonb", oidJSONB, 3807},
	{"point", oidPoint, 1017},
	{"tsvector", oidTSVector, 3643},
	{"int4range", oidInt4Range, 3905},
	{"numrange", oidNumRange, 3907},
	{"tsrange", oidTSRange, 3909},
	{"tstzrange", oidTSTZRange, 3911},
	{"daterange", oidDateRange, 3913},
	{"int8range", oidInt8Range, 3927},
}

// arrayElem maps the built-in array types to their element types, so that
// an array column is recognised even when the engine does not set Kind 'a'
// (a domain over an array, for example).
var arrayElem = func() map[uint32]uint32 {
	m := make(map[uint32]uint32, len(builtinTypes))
	for _, t := range builtinTypes {
		m[t.array] = t.oid
	}
	return m
}()

// Placeholder elements Debezium uses for unchanged TOASTed arrays: the
// placeholder's bytes as numbers for integer[] and bigint[]
// (UnchangedToastedPlaceholder), a one-element string array otherwise.
var (
	unchangedString      = appendString(nil, UnavailableValuePlaceholder)
	unchangedStringArray = append(append([]byte{'['}, unchangedString...), ']')
	unchangedByteArray   = func() []byte {
		b := []byte{'['}
		for i := 0; i < len(UnavailableValuePlaceholder); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendInt(b, int64(UnavailableValuePlaceholder[i]))
		}
		return append(b, ']')
	}()
)

// codecKind is how one PostgreSQL type is written.
type codecKind uint8

const (
	kString codecKind = iota // text as a JSON string
	// kOmit: the column is left out of keys and rows, as Debezium leaves
	// out columns of types it has no schema for.
	kOmit
	// kNull: always null, where Debezium's converter yields no value.
	kNull
	// kEmptyArray: always [], for int2vector and oidvector, which Debezium
	// takes for arrays (they have element types) and pgjdbc's PgArray
	// parses as empty (their text, "1 2", has no braces).
	kEmptyArray
	kBool
	kInt // int2, int4, int8
	kOID
	kFloat4
	kFloat8
	kNumeric
	kMoney
	kBytea
	kBitBool  // bit(1), varbit(1): BOOLEAN
	kBitBytes // io.debezium.data.Bits
	kDate     // streamed: pgoutput's text through DateTimeFormat
	kTime
	kTimetz
	kTimestamp
	kTimestamptz
	kInterval
	kPoint
	kHstore
	kArray
	// Values that Debezium reads as java.sql types through pgjdbc: snapshot
	// dates, and the elements of temporal arrays (jdbc.go).
	kDateJDBC
	kTimeJDBC
	kTimetzJDBC
	kTimestampJDBC
	kTimestamptzJDBC
)

// codec writes the values of one column (or of an array's elements).
type codec struct {
	kind      codecKind
	frac      int8   // timestamptz: fixed fraction digits (0 = as few as needed)
	delim     byte   // array: element delimiter
	elem      *codec // array: element codec
	unchanged []byte // JSON written for Unchanged
	// Arrays Debezium writes as null as a whole: numeric arrays holding NaN
	// or an infinity (pgjdbc cannot make BigDecimals of them), enum arrays
	// holding NULL.
	nullOnSpecial, nullOnNull bool
}

// path is how Debezium obtained a value: pgoutput's text for a streamed
// change, a JDBC ResultSet for a snapshot row, pgjdbc's PgArray for an
// array element (in both). A few types come out differently on each.
type path uint8

const (
	pathStream path = iota
	pathSnapshot
	pathElement
)

// resolveOID follows a domain to its base type.
func resolveOID(c Column) uint32 {
	if c.Kind == 'd' && c.BaseOID != 0 {
		return c.BaseOID
	}
	return c.TypeOID
}

func newColumnCodec(c Column, snapshot bool) *codec {
	if c.Kind == 'e' {
		return &codec{kind: kString, unchanged: unchangedString}
	}
	oid := resolveOID(c)
	elem, isArray := arrayElem[oid]
	elemKind := byte('b')
	if c.Kind == 'a' && c.ElemOID != 0 {
		elem, isArray = c.ElemOID, true
		if c.ElemKind != 0 {
			elemKind = c.ElemKind
		}
	}
	if !isArray {
		p := pathStream
		if snapshot {
			p = pathSnapshot
		}
		return newScalarCodec(oid, c.TypeMod, c.TypeName, p)
	}
	return newArrayCodec(oid, elem, elemKind, c.TypeMod, c.TypeName)
}

// Debezium's PostgresValueConverter declares no schema for these array
// types ("still need to be implemented"), so it leaves their columns out;
// bit arrays get the schema of a bit column, which their values never
// fit, so they are always null.
var (
	omittedArrays = map[uint32]bool{
		791:  true, // money[]
		1003: true, // name[]
		1187: true, // interval[]
		1563: true, // varbit[]
		143:  true, // xml[]
		1017: true, // point[]
		2201: true, // refcursor[]
	}
	nullArrays = map[uint32]bool{1561: true} // bit[]
)

func newArrayCodec(arrayOID, elem uint32, elemKind byte, typmod int32, typeName string) *codec {
	switch {
	case omittedArrays[arrayOID]:
		return &codec{kind: kOmit}
	case nullArrays[arrayOID]:
		return &codec{kind: kNull, unchanged: nullJSON}
	case elemKind == 'd':
		// "this does not work for array columns of domain types"
		// (PostgresValueConverter): no element schema, no column.
		return &codec{kind: kOmit}
	}
	var ec *codec
	if elemKind == 'e' {
		ec = &codec{kind: kString, unchanged: unchangedString}
	} else {
		ec = newScalarCodec(elem, typmod, strings.TrimSuffix(typeName, "[]"), pathElement)
	}
	if ec.kind == kOmit || ec.kind == kNull {
		return &codec{kind: kOmit}
	}
	ac := &codec{kind: kArray, delim: ',', elem: ec, unchanged: unchangedStringArray,
		nullOnSpecial: ec.kind == kNumeric, nullOnNull: elemKind == 'e'}
	if elem == oidInt4 || elem == oidInt8 {
		ac.unchanged = unchangedByteArray
	}
	return ac
}

var nullJSON = []byte("null")

// stringTypes are the built-in types Debezium writes as their text.
var stringTypes = map[uint32]bool{
	oidChar: true, oidText: true, oidJSON: true, oidXML: true, oidCIDR: true, oidMacaddr8: true,
	oidMacaddr: true, oidInet: true, oidBPChar: true, oidVarchar: true, oidUUID: true, oidTSVector: true,
	oidJSONB: true, oidInt4Range: true, oidNumRange: true, oidTSRange: true, oidTSTZRange: true,
	oidDateRange: true, oidInt8Range: true,
}

func newScalarCodec(oid uint32, typmod int32, typeName string, p path) *codec {
	c := &codec{kind: kString, unchanged: unchangedString}
	switch oid {
	case oidBool:
		c.kind = kBool
	case oidInt2, oidInt4, oidInt8:
		c.kind = kInt
	case oidOID:
		c.kind = kOID
	case oidFloat4:
		c.kind = kFloat4
	case oidFloat8:
		c.kind = kFloat8
	case oidNumeric:
		c.kind = kNumeric
	case oidMoney:
		c.kind = kMoney
	case oidBytea:
		c.kind = kBytea
	case oidBit, oidVarbit:
		// Debezium: BOOLEAN when the length is 1, else Bits. bit's typmod is
		// its length; varbit without one has length 2^31-1.
		if typmod == 1 {
			c.kind = kBitBool
		} else {
			c.kind = kBitBytes
		}
	case oidName:
		// The snapshot reads name as a VARCHAR; pgoutput's value resolver
		// has no case for it and yields null.
		if p == pathStream {
			c.kind, c.unchanged = kNull, nullJSON
		}
	case oidDate:
		c.kind = kDate
		if p != pathStream {
			c.kind = kDateJDBC
		}
	case oidTime:
		c.kind = kTime
		if p == pathElement {
			c.kind = kTimeJDBC
		}
	case oidTimetz:
		c.kind = kTimetz
		if p == pathElement {
			c.kind = kTimetzJDBC
		}
	case oidTimestamp:
		c.kind = kTimestamp
		if p == pathElement {
			c.kind = kTimestampJDBC
		}
	case oidTimestamptz:
		c.kind = kTimestamptz
		if p == pathElement {
			c.kind = kTimestamptzJDBC
		}
		// ZonedTimestamp pads the fraction to the column's scale: the
		// typmod, or 6 without one. Scale 0 prints no fraction.
		c.frac = 6
		if typmod >= 0 && typmod <= 6 {
			c.frac = int8(typmod)
		}
	case oidInterval:
		c.kind = kInterval
	case oidPoint:
		c.kind = kPoint
	case oidInt2Vector, oidOIDVector:
		c.kind = kEmptyArray
	default:
		switch {
		case stringTypes[oid]:
		case oid < firstNormalOID:
			// Built-in types without a Debezium schema: geometric types
			// other than point, pg_lsn, tsquery, xid, tid, reg*, jsonpath,
			// multiranges, ...
			c.kind = kOmit
		default:
			c.kind = extensionKind(typeName)
		}
	}
	return c
}

// extensionKind is how Debezium writes a type that is neither built in,
// an enum, a domain nor an array: it recognises some extensions' types by
// name and leaves out the rest (include.unknown.datatypes=false).
func extensionKind(typeName string) codecKind {
	name := typeName
	if i := strings.IndexByte(name, '('); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	switch strings.Trim(name, `"`) {
	case "citext", "ltree", "isbn":
		return kString
	case "hstore":
		return kHstore
	case "geometry", "geography", "vector", "halfvec", "sparsevec":
		// Debezium writes structs and arrays of these; cdcq writes their
		// text (DEBEZIUM.md, "Where cdcq differs").
		return kString
	}
	return kOmit
}
