package plugin

import (
	"time"

	"github.com/iofog/iofog-connector/sdk/plugin/internal/pb"
)

// ThresholdReporter is an optional interface of an [sdk.Session] a plugin
// serves: the heartbeat threshold its connector told it (zero when it was
// not told). The plugin uses it to decide how long a silent host may be
// before the sessions it holds for it end (see [Serve]); without it,
// DialConfig.HeartbeatThreshold, or [sdk.DefaultHeartbeatThreshold], is
// used.
type ThresholdReporter interface {
	HeartbeatThreshold() time.Duration
}

// Host liveness. A host beats every hostBeatInterval on its Watch stream
// from the moment it opens it; a host silent for half the smallest
// heartbeat threshold of the agent sessions it holds (clamped to
// [minHostSilence, maxHostSilence]) is taken as frozen: a host process
// stopped or hung while its plugin child runs on would otherwise keep its
// sessions beating, so that connectors never learn the agent is gone. The
// floor keeps eight beats of margin, so that a live host on a loaded
// machine is not mistaken for a frozen one; a plugin that was itself held
// up (its checks came late) blames no host for the gap.
const (
	hostBeatInterval = 250 * time.Millisecond
	minHostSilence   = 2 * time.Second
	maxHostSilence   = 30 * time.Second
	leaseCheck       = 100 * time.Millisecond
)

// hostSilenceLimit returns how long the host may be silent before the
// sessions it holds end, and whether it holds any.
func (s *server) hostSilenceLimit() (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) == 0 {
		return 0, false
	}
	least := time.Duration(0)
	for _, ss := range s.sessions {
		th := ss.threshold
		if tr, ok := ss.Session.(ThresholdReporter); ok {
			if told := tr.HeartbeatThreshold(); told > 0 {
				th = told
			}
		}
		if least == 0 || th < least {
			least = th
		}
	}
	return min(max(least/2, minHostSilence), maxHostSilence), true
}

// expireSessions ends every agent session held for the host, and their
// streams, because the host stopped beating for silent.
func (s *server) expireSessions(silent, limit time.Duration) {
	s.mu.Lock()
	sessions := s.sessions
	s.sessions = map[uint64]*servedSession{}
	s.mu.Unlock()
	streams := 0
	for id, ss := range sessions {
		ss.Close()
		streams += s.hub.closeOwner(id)
	}
	s.log.Error("the host stopped beating; ending the agent sessions it held, and their streams, so that their connectors see the agent gone",
		"silent", silent.Round(time.Millisecond).String(), "limit", limit.String(), "sessions", len(sessions), "streams", streams)
}

// Watch implements the plugin side of the host's Watch stream: it takes
// the host's beats, ends the host's sessions when the beats stop (see
// [ThresholdReporter]), and sends the host the tickets of streams that
// ended abnormally.
func (s *server) Watch(stream pb.Transport_WatchServer) error {
	ctx := stream.Context()
	s.hub.watchers.Add(1)
	defer s.hub.watchers.Add(-1)
	go func() { // events to the host; a blocked Send never holds the lease
		for {
			select {
			case t := <-s.hub.events:
				if stream.Send(&pb.StreamEvent{Ticket: t[:], Aborted: true}) != nil {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	beats := make(chan struct{}, 1)
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for {
			beat, err := stream.Recv()
			if err != nil {
				return
			}
			if beat.GetReportsClosed() {
				s.obs.hostReports.Store(true)
			}
			for _, t := range beat.GetClosed() {
				if len(t) == ticketLen {
					s.obs.done(ticket(t))
				}
			}
			select {
			case beats <- struct{}{}:
			default:
			}
		}
	}()
	tick := time.NewTicker(leaseCheck)
	defer tick.Stop()
	// A host that opens Watch beats: the lease runs from now.
	last := time.Now()
	lastCheck := last
	for {
		select {
		case <-beats:
			last = time.Now()
		case <-tick.C:
			select { // a beat that came with the tick counts first
			case <-beats:
				last = time.Now()
			default:
			}
			now := time.Now()
			late := now.Sub(lastCheck) > leaseCheck+time.Second
			lastCheck = now
			if late {
				// This process was held up: beats may wait unread.
				last = now
				continue
			}
			limit, any := s.hostSilenceLimit()
			if silent := now.Sub(last); any && silent > limit {
				s.expireSessions(silent, limit)
			}
		case <-recvDone:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
