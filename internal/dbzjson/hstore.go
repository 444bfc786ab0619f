package dbzjson

import (
	"sort"
	"unicode/utf16"
)

// appendHstore writes an hstore value as Debezium's
// hstore.handling.mode=json does: pgjdbc's HStoreConverter parses the text
// into a java.util.HashMap, Jackson writes the map as a JSON object in the
// map's iteration order (NULL values as null), and that text is the
// column's string.
func appendHstore(dst []byte, s string) ([]byte, error) {
	pairs, ok := parseHstore(s)
	if !ok {
		return dst, errSyntax
	}
	obj := make([]byte, 0, len(s)+8)
	obj = append(obj, '{')
	for i, p := range javaHashMapOrder(pairs) {
		if i > 0 {
			obj = append(obj, ',')
		}
		// Jackson's character generator: no surrogate escapes here; the
		// outer string gets them.
		obj = appendJSONString(obj, p.key, false)
		obj = append(obj, ':')
		if p.null {
			obj = append(obj, "null"...)
		} else {
			obj = appendJSONString(obj, p.value, false)
		}
	}
	obj = append(obj, '}')
	return appendString(dst, string(obj)), nil
}

type hstorePair struct {
	key, value string
	null       bool
}

// parseHstore reads hstore_out's text: "key"=>"value" or "key"=>NULL,
// separated by ", ", with \ escaping '"' and '\' inside the quotes.
func parseHstore(s string) ([]hstorePair, bool) {
	var pairs []hstorePair
	i := 0
	skipSpace := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	quoted := func() (string, bool) {
		if i >= len(s) || s[i] != '"' {
			return "", false
		}
		i++
		var b []byte
		for i < len(s) {
			switch c := s[i]; c {
			case '"':
				i++
				return string(b), true
			case '\\':
				if i+1 >= len(s) {
					return "", false
				}
				b = append(b, s[i+1])
				i += 2
			default:
				b = append(b, c)
				i++
			}
		}
		return "", false
	}
	for skipSpace(); i < len(s); skipSpace() {
		if len(pairs) > 0 {
			if s[i] != ',' {
				return nil, false
			}
			i++
			skipSpace()
		}
		var p hstorePair
		var ok bool
		if p.key, ok = quoted(); !ok {
			return nil, false
		}
		skipSpace()
		if i+1 >= len(s) || s[i] != '=' || s[i+1] != '>' {
			return nil, false
		}
		i += 2
		skipSpace()
		if len(s)-i >= 4 && s[i:i+4] == "NULL" {
			p.null = true
			i += 4
		} else if p.value, ok = quoted(); !ok {
			return nil, false
		}
		pairs = append(pairs, p)
	}
	return pairs, true
}

// javaHashMapOrder returns the pairs in the order a java.util.HashMap
// filled with them in turn iterates them: by bucket (the spread String
// hash code masked by the table size the map grew to), and within a bucket
// in insertion order, which resizing keeps. Keys are distinct. (Buckets of
// more than eight keys in tables of 64 or more become trees, whose order
// this does not follow; hstore values with such collisions are unlikely.)
func javaHashMapOrder(pairs []hstorePair) []hstorePair {
	if len(pairs) < 2 {
		return pairs
	}
	hashes := make([]uint32, len(pairs))
	capacity := uint32(16)
	for n, p := range pairs {
		hashes[n] = spreadHash(p.key)
		// putVal: a ninth entry in one bucket makes treeifyBin resize a
		// table smaller than 64, then the size may exceed the threshold.
		if capacity < 64 {
			same := 0
			for _, h := range hashes[:n+1] {
				if h&(capacity-1) == hashes[n]&(capacity-1) {
					same++
				}
			}
			if same >= 9 {
				capacity *= 2
			}
		}
		if uint32(n+1) > capacity/4*3 {
			capacity *= 2
		}
	}
	order := make([]int, len(pairs))
	for n := range order {
		order[n] = n
	}
	sort.SliceStable(order, func(a, b int) bool {
		return hashes[order[a]]&(capacity-1) < hashes[order[b]]&(capacity-1)
	})
	out := make([]hstorePair, len(pairs))
	for n, i := range order {
		out[n] = pairs[i]
	}
	return out
}

// spreadHash is HashMap.hash of a String: its hashCode (over UTF-16 code
// units) with the high half folded into the low half.
func spreadHash(s string) uint32 {
	var h uint32
	for _, r := range s {
		if r > 0xFFFF {
			hi, lo := utf16.EncodeRune(r)
			h = 31*h + uint32(hi)
			h = 31*h + uint32(lo)
			continue
		}
		h = 31*h + uint32(r)
	}
	return h ^ h>>16
}
