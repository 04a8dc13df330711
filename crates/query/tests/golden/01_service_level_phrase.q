service:api level:error "connection refused"
