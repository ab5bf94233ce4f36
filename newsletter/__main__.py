from newsletter.cli.main import run

run()
