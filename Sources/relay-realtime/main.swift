import Foundation
print("not yet implemented"); exit(1)
