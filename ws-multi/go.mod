module github.com/adred-codev/ws_poc/ws-multi

go 1.26
