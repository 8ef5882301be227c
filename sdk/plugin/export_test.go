package plugin

// PauseHostBeats stops (or resumes) r's beats to its plugin, as a frozen
// host's stop.
func PauseHostBeats(r *Remote, paused bool) { r.watch.paused.Store(paused) }
