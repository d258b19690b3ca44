package rules

import "time"

// Hybrid identities (DESIGN.md "End users"): an Entra ID user whose
// onPremisesImmutableId equals base64(objectGUID) of an AD end user of the
// same customer is that person. The AD end user stays the one end user; the
// Entra side is a link that remembers the contact values Entra last gave.
// The functions below decide, for one email or mobile field, what such a
// person's end user holds. The sync engine (internal/importer) calls them;
// they apply the same provenance order as MergeContactField: a value a
// person typed is never replaced by a sync, a directory value is never
// replaced by a PSA value.

// MergeEntraContact decides a linked AD end user's email or mobile when its
// Entra link brings incoming; previous is what Entra gave before ("" for a
// new link). Entra fills an empty field or replaces a PSA value, and
// replaces its own earlier value; it never replaces a value a person typed
// or another directory value (AD's), and never clears anything. The same
// value as a PSA one takes the directory's provenance (as in
// MergeContactField).
func MergeEntraContact(current string, currentFrom Provenance, previous, incoming string) (string, Provenance) {
	switch {
	case incoming == "" || (incoming == current && currentFrom != ProvenancePSA):
		return current, currentFrom
	case currentFrom.IsHuman() && current != "":
		return current, currentFrom
	case current == "" || currentFrom == ProvenancePSA:
		return incoming, ProvenanceDirectory
	case currentFrom == ProvenanceDirectory && previous != "" && current == previous:
		return incoming, ProvenanceDirectory
	}
	return current, currentFrom
}

// MergeDirectoryContact decides an end user's email or mobile on a page of
// its directory (local, ad or azure): the directory's value merges as
// MergeContactField says (a refused value leaves the field as it is). For a
// hybrid AD end user, the values its Entra links last gave (linked, oldest
// link first) then apply as on an Entra page whose value did not change
// (MergeEntraContact): they fill a field AD left empty or replace a PSA
// value. So AD's value wins over Entra's, and the result does not depend on
// which of the two synced last.
func MergeDirectoryContact(current string, currentFrom Provenance, incoming string, refused bool, linked []string) (string, Provenance) {
	v, from := current, currentFrom
	if !refused {
		v, from = MergeContactField(current, currentFrom, incoming, ProvenanceDirectory)
	}
	for _, l := range linked {
		v, from = MergeEntraContact(v, from, l, l)
	}
	return v, from
}

// FoldContact decides an AD end user's email or mobile when the azure end
// user that is the same person (imported from Entra before the two were
// linked) folds into it: a value a person typed on the azure end user wins
// unless the AD end user holds one too; otherwise the azure end user's
// value only fills an empty field.
func FoldContact(current string, currentFrom Provenance, folded string, foldedFrom Provenance) (string, Provenance) {
	switch {
	case folded == "":
	case foldedFrom.IsHuman() && !(currentFrom.IsHuman() && current != ""):
		return folded, foldedFrom
	case current == "":
		return folded, foldedFrom
	}
	return current, currentFrom
}

// SelfServeStamps are an end user's self-serve switch and history.
type SelfServeStamps struct {
	SelfServe     bool
	FirstAccessAt *time.Time
	WelcomeSentAt *time.Time
}

// FoldStamps is what the AD end user keeps when the azure end user that is
// the same person folds into it: the switch is on if it was on for either,
// first access is the earliest and the welcome stamp the latest.
func FoldStamps(kept, folded SelfServeStamps) SelfServeStamps {
	out := kept
	out.SelfServe = kept.SelfServe || folded.SelfServe
	if folded.FirstAccessAt != nil && (kept.FirstAccessAt == nil || folded.FirstAccessAt.Before(*kept.FirstAccessAt)) {
		out.FirstAccessAt = folded.FirstAccessAt
	}
	if folded.WelcomeSentAt != nil && (kept.WelcomeSentAt == nil || folded.WelcomeSentAt.After(*kept.WelcomeSentAt)) {
		out.WelcomeSentAt = folded.WelcomeSentAt
	}
	return out
}

// LinkContact is what a new link remembers as Entra's last value when an
// azure end user becomes the link of its AD counterpart: its value if
// Entra gave it (provenance directory), else nothing — a PSA or typed value
// stays on the end user and is not Entra's.
func LinkContact(value string, from Provenance) string {
	if from == ProvenanceDirectory {
		return value
	}
	return ""
}
