module github.com/adred-codev/ws_poc/ws-single

go 1.26
