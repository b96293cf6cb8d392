// The consume -> process -> commit loop shared by every worker.
