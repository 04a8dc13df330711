status:>=500 -path:/health
