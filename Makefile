# Thin aliases for dev.py, which needs nothing but Python 3.11+ and pip.
.PHONY: run chat test bench
run:   ; python3 dev.py run
chat:  ; python3 dev.py chat
test:  ; python3 dev.py test
bench: ; python3 dev.py bench
