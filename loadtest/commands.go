package main

// subcommands lists every subcommand in the order `loadtest --help` shows them.
// Each lives in its own package under internal/ and only its entry point is wired here.
func subcommands() []command {
	return []command{}
}
