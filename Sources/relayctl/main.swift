import RelayRuntime
print("relayctl")
