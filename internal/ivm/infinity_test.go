package ivm

import "testing"

// Every stand-in Debezium 3.6 writes for an infinite date or timestamp
// (streamed, snapshot and array forms), and those cdcq's embedded capture
// wrote before, reads back as the infinity.
func TestDebeziumInfinityStandIns(t *testing.T) {
	for s, form := range dbzDateInfinities {
		v, err := parseDbzDate(s)
		if err != nil || v.form != form {
			t.Errorf("date %s: %+v, %v", s, v, err)
		}
	}
	for s, form := range dbzTimestampInfinities {
		v, err := parseDbzTimestamp(s, kindTimestamp)
		if err != nil || v.form != form {
			t.Errorf("timestamp %s: %+v, %v", s, v, err)
		}
	}
	if v, err := parseDbzDate("+292278994-08-16Z"); err != nil || v.form != formPosInf {
		t.Errorf("the snapshot's date infinity: %+v, %v", v, err)
	}
	if v, err := parseDbzDate("-5877611-06-21Z"); err != nil || v.form != formPosInf {
		t.Errorf("the stream's date infinity: %+v, %v", v, err)
	}
}
