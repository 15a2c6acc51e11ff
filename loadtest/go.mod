module github.com/adred-codev/ws_poc/loadtest

go 1.26
