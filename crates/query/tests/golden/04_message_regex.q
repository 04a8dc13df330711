message:~"timeout after \d+ms"
