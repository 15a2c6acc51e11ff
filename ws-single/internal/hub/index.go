package hub

// clientSet is the subscribers of one channel: a slice to iterate fast on the
// broadcast path and an index for O(1) removal (swap with the last element).
type clientSet struct {
	list  []*Client
	index map[*Client]int
}

func newClientSet() *clientSet {
	return &clientSet{index: make(map[*Client]int)}
}

func (s *clientSet) add(c *Client) {
	if _, ok := s.index[c]; ok {
		return
	}
	s.index[c] = len(s.list)
	s.list = append(s.list, c)
}

func (s *clientSet) remove(c *Client) {
	i, ok := s.index[c]
	if !ok {
		return
	}
	last := len(s.list) - 1
	s.list[i] = s.list[last]
	s.index[s.list[i]] = i
	s.list[last] = nil
	s.list = s.list[:last]
	delete(s.index, c)
}

func (s *clientSet) len() int { return len(s.list) }
