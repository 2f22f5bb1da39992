import type { Command } from 'commander'

export function registerOperatorCommand(program: Command): void {
  program
    .command('operator')
    .description('run the Kubernetes operator (kubeconfig by the usual rules; in-cluster in a pod)')
    .option('--namespace <ns>', 'watch one namespace (default: all)')
    .action(async (o: { namespace?: string }) => {
      const specifier = '../../operator/main.js'
      const mod = (await import(specifier).catch(() => null)) as { runOperator?: (o: { namespace?: string }) => Promise<void> } | null
      if (!mod?.runOperator) throw new Error('the operator is not part of this build yet')
      await mod.runOperator(o)
    })
}
