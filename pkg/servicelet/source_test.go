package servicelet

import "testing"

// A slice that was read and lists no endpoints (no workspace binds the export yet)
// leaves nothing unseen; one that could not be read does.
func TestSyncedWithoutEndpoints(t *testing.T) {
	s := NewSource(nil, "slice", "rt", nil, nil)
	if s.Synced() {
		t.Error("Synced before the slice was read")
	}
	s.setSliceRead(true)
	if !s.Synced() {
		t.Error("not Synced with the slice read and no endpoints")
	}
	s.setSliceRead(false)
	if s.Synced() {
		t.Error("Synced after the slice could not be read")
	}
}
