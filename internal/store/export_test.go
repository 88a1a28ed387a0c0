package store

// FindKeyByHashQuery is the text of the prepared key lookup, for tests of
// its plan.
var FindKeyByHashQuery = findKeyByHashQuery
