package rules

// MergeContactField decides the stored value of an email or mobile when an
// import brings incoming (from a source of provenance from) over current
// (stored, of provenance currentFrom). It returns the value and provenance to
// store.
//
//   - a human value (manual, end_user) is never overwritten;
//   - a directory import replaces directory and PSA values, and may clear a
//     directory value (the directory is authoritative), but never clears a
//     PSA value with an empty one;
//   - a PSA import only fills an empty field or replaces an earlier PSA value.
func MergeContactField(current string, currentFrom Provenance, incoming string, from Provenance) (string, Provenance) {
	if currentFrom.IsHuman() && current != "" {
		return current, currentFrom
	}
	switch from {
	case ProvenanceDirectory:
		if incoming == "" {
			if currentFrom == ProvenancePSA && current != "" {
				return current, currentFrom
			}
			return "", ProvenanceNone
		}
		return incoming, ProvenanceDirectory
	case ProvenancePSA:
		if incoming == "" {
			return current, currentFrom
		}
		if current == "" || currentFrom == ProvenancePSA || currentFrom == ProvenanceNone {
			return incoming, ProvenancePSA
		}
		return current, currentFrom
	default:
		// Manual and end-user edits go through the API, not imports; treat
		// them as authoritative.
		if incoming == "" {
			return "", ProvenanceNone
		}
		return incoming, from
	}
}
