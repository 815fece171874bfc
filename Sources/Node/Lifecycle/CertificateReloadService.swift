import ClusterPKI
import Logging
import ServiceLifecycle
import UnixSignals

/// Reads the node's certificate and key again on every SIGHUP, so an operator can renew them
/// without a restart. Connections made afterwards use the new pair; open ones keep theirs.
struct CertificateReloadService: Service {
    let files: CertificateFiles
    let logger: Logger

    func run() async {
        // Trapped by the sequence from here on; the node ignored SIGHUP since it started.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in hangups {
                do {
                    let serial = try files.reload()
                    logger.info("SIGHUP: reloaded \(files.certificatePath) (serial \(serial)); new connections use it")
                } catch {
                    logger.error("SIGHUP: cannot reload the certificate, keeping serial \(files.serial): \(error)")
                }
            }
        }
    }
}
